// Per-step previews without a VAE decode: the sampler's current clean-sample estimate mapped to RGB
// by a fixed linear map per latent pixel (ComfyUI's SD15 `latent_rgb_factors`, comfy/latent_formats.py,
// applied as latent_preview.py's Latent2RGBPreviewer does). 12 multiply-adds per latent pixel.
import DeciImage

/// What a preview of one denoising step is made from: the current estimate of the clean latents
/// in the scaled latent space the denoiser sees (VAE latents times the scaling factor), NCHW.
/// Building one costs nothing: it holds arrays the step made anyway (copy on write), and where the
/// estimate has to be derived, that happens only when ``latents`` is read.
public struct LatentPreviewSource: Sendable {
    /// Where the estimate comes from.
    public enum Origin: String, Sendable {
        /// The scheduler's own `pred_original_sample` (DDIM, DDPM, Euler, Euler ancestral, Heun,
        /// LMS, LCM's `denoised`, DPM-Solver "++" variants).
        case schedulerEstimate
        /// Derived from the guided model output and the training schedule at the step's timestep
        /// (PNDM, UniPC, DPM-Solver without "++"): see `ScheduleSettings.predictedOriginalSample`.
        case derivedFromModelOutput
        /// The latents after the step (a scheduler of a kind neither of the above covers): noisier
        /// than an estimate, but never wrong in shape.
        case currentLatents
    }

    public let batch: Int
    public let channels: Int
    /// Latent height and width (the image's over the VAE factor: 1/8 for SD-1.x).
    public let height: Int
    public let width: Int
    public let origin: Origin
    private let compute: @Sendable () -> [Float]

    /// A source over an estimate already computed (`latents.count == batch * channels * height * width`).
    public init(latents: [Float], batch: Int, channels: Int, height: Int, width: Int, origin: Origin = .schedulerEstimate) {
        self.init(batch: batch, channels: channels, height: height, width: width, origin: origin) { latents }
    }

    /// A source whose estimate `compute` makes when first asked for.
    init(batch: Int, channels: Int, height: Int, width: Int, origin: Origin, compute: @escaping @Sendable () -> [Float]) {
        (self.batch, self.channels, self.height, self.width, self.origin, self.compute) = (batch, channels, height, width, origin, compute)
    }

    /// The clean-latent estimate, NCHW `[batch, channels, height, width]`: a copy, so editing it
    /// never touches the sampling latents.
    public var latents: [Float] { compute() }
}

/// The cheap latent-to-RGB preview.
public enum LatentPreview {
    /// ComfyUI's SD15 factors: row `c` is latent channel `c`'s (R, G, B) weight; no bias.
    public static let sd15Factors: [[Float]] = [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]

    /// One image per batch element: `rgb = sum_c x0[c] * F[c]` per latent pixel, then
    /// `clamp((rgb + 1) / 2, 0, 1) * 255` truncated to 8 bits (torch's `.to(uint8)`, as ComfyUI
    /// converts). At latent resolution, or with `upscaledTo` a size with both sides positive,
    /// nearest-neighbour upscaled to it (cheap and shows the latent pixels as they are; a non-
    /// positive side keeps latent resolution). Latent channels past the fourth are ignored.
    public static func rgb(_ source: LatentPreviewSource, upscaledTo size: (width: Int, height: Int)? = nil) -> [RGBImage] {
        let (n, c, h, w) = (source.batch, source.channels, source.height, source.width)
        let x0 = source.latents
        guard n > 0, h > 0, w > 0, c > 0, x0.count == n * c * h * w else { return [] }
        let used = min(c, sd15Factors.count)
        let plane = h * w
        var out: [RGBImage] = []
        for b in 0..<n {
            var pixels = [UInt8](repeating: 0, count: plane * 3)
            for p in 0..<plane {
                for k in 0..<3 {
                    var v: Float = 0
                    for ch in 0..<used { v += x0[(b * c + ch) * plane + p] * sd15Factors[ch][k] }
                    let unit = min(max((v + 1) / 2, 0), 1)
                    pixels[p * 3 + k] = unit.isNaN ? 0 : UInt8(unit * 255)
                }
            }
            guard let image = try? RGBImage(width: w, height: h, pixels: pixels) else { continue }
            if let size, size.width > 0, size.height > 0, size.width != w || size.height != h {
                out.append(nearest(image, width: size.width, height: size.height))
            } else {
                out.append(image)
            }
        }
        return out
    }

    /// Nearest-neighbour resampling: output pixel (x, y) takes source pixel
    /// (x * w / W, y * h / H), so an integer factor repeats each pixel factor x factor times.
    static func nearest(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let sy = y * image.height / height
            for x in 0..<width {
                let s = (sy * image.width + x * image.width / width) * 3, d = (y * width + x) * 3
                pixels[d] = image.pixels[s]
                pixels[d + 1] = image.pixels[s + 1]
                pixels[d + 2] = image.pixels[s + 2]
            }
        }
        return (try? RGBImage(width: width, height: height, pixels: pixels)) ?? image
    }
}
