// Element-wise maths the models apply around their layers: latent scaling, broadcast adds and the
// VAE posterior's diagonal Gaussian. Each is one expression per element, so a second backend
// matches bit for bit when it evaluates the same expression in float32.
import CDeciKernels
import Foundation

extension Ops {
    /// `(x - shift) * scale` per element (latents from the VAE encoder: diffusers'
    /// `(z - shift_factor) * scaling_factor`).
    public static func affine(_ x: Tensor, subtracting shift: Float, multipliedBy scale: Float) -> Tensor {
        let out = Tensor(shape: x.shape)
        if Fault.skips("affine", x, out) { return out }
        let (src, dst) = (x.pointer, out.pointer)
        for i in 0..<x.count { dst[i] = (src[i] - shift) * scale }
        return out
    }

    /// `x / divisor + shift` per element (latents for the VAE decoder: diffusers'
    /// `latents / scaling_factor + shift_factor`); a true division, not a multiplication by the
    /// reciprocal, as torch computes it.
    public static func affine(_ x: Tensor, dividedBy divisor: Float, adding shift: Float) -> Tensor {
        let out = Tensor(shape: x.shape)
        if Fault.skips("affine", x, out) { return out }
        let (src, dst) = (x.pointer, out.pointer)
        for i in 0..<x.count { dst[i] = src[i] / divisor + shift }
        return out
    }

    /// `a + b` with `b` repeated along the leading axes: `b.count` must divide `a.count` (e.g.
    /// position embeddings `[tokens, c]` added to every sequence of `[n, tokens, c]`).
    public static func addRepeating(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(b.count > 0 && a.count % b.count == 0, "addRepeating: \(b.shape) does not tile \(a.shape)")
        let out = Tensor(shape: a.shape)
        if Fault.skips("addRepeating", a, b, out) { return out }
        dd_add(a.pointer, b.pointer, out.pointer, a.count, b.count)
        return out
    }

    /// Splits VAE moments `[..., 2c]` (first half mean, second half log-variance) into the
    /// posterior's mean, log-variance clamped to [-30, 20] and `std = exp(0.5 * logvar)`, each
    /// `[..., c]`, as diffusers' `DiagonalGaussianDistribution` computes them.
    public static func diagonalGaussian(_ moments: Tensor) -> (mean: Tensor, logvar: Tensor, std: Tensor) {
        precondition(moments.channels % 2 == 0, "diagonalGaussian: moments need an even last axis, got \(moments.shape)")
        let c = moments.channels / 2
        let shape = Array(moments.shape.dropLast()) + [c]
        let mean = Tensor(shape: shape), logvar = Tensor(shape: shape), std = Tensor(shape: shape)
        if Fault.skips("diagonalGaussian", moments, mean, logvar, std) { return (mean, logvar, std) }
        let (src, m, l, s) = (moments.pointer, mean.pointer, logvar.pointer, std.pointer)
        for r in 0..<moments.rows {
            for k in 0..<c {
                let lv = min(max(src[r * 2 * c + c + k], -30), 20)
                m[r * c + k] = src[r * 2 * c + k]
                l[r * c + k] = lv
                s[r * c + k] = Foundation.exp(0.5 * lv)
            }
        }
        return (mean, logvar, std)
    }

    /// `mean + std * noise` per element: a sample of a diagonal Gaussian for standard-normal noise.
    public static func gaussianSample(mean: Tensor, std: Tensor, noise: Tensor) -> Tensor {
        precondition(std.shape == mean.shape && noise.shape == mean.shape,
                     "gaussianSample: mean \(mean.shape), std \(std.shape), noise \(noise.shape)")
        let out = Tensor(shape: mean.shape)
        if Fault.skips("gaussianSample", mean, std, noise, out) { return out }
        let (m, s, z, o) = (mean.pointer, std.pointer, noise.pointer, out.pointer)
        for i in 0..<out.count { o[i] = m[i] + s[i] * z[i] }
        return out
    }
}
