// What the sampling loop needs from a UNet.
import DeciTensor

/// A conditional denoiser: given noisy latents, the timestep of each batch element and the text
/// states, predicts what the model was trained to predict (epsilon or v; the scheduler knows which).
///
/// Latents are NHWC `[n, h, w, inChannels]`; `h` and `w` must be multiples of ``latentSizeMultiple``
/// (check with ``checkLatentSize(height:width:)`` before sampling). The output is
/// `[n, h, w, outChannels]`.
public protocol Denoiser: AnyObject, Sendable {
    /// Latent channels the model reads (4, or 9 for SD inpainting).
    var inChannels: Int { get }
    /// Latent channels the model predicts.
    var outChannels: Int { get }
    /// Width of the text states the cross-attentions read (768 for CLIP ViT-L/14).
    var contextChannels: Int { get }
    /// Latent sides must be multiples of this: 2 to the number of downsamplers. It is a property of
    /// the UNet alone; the VAE multiplies it by its own factor for image sides.
    var latentSizeMultiple: Int { get }

    /// `latents` `[n, h, w, inChannels]`; `timesteps` one per batch element (or one for all);
    /// `context` `[n, tokens, contextChannels]`. Returns `[n, h, w, outChannels]`.
    func callAsFunction(_ latents: Tensor, timesteps: [Float], context: Tensor) -> Tensor
}

extension Denoiser {
    /// Throws a config error naming the latent size when the model cannot take it.
    public func checkLatentSize(height: Int, width: Int) throws(ModelError) {
        let m = latentSizeMultiple
        guard height > 0, width > 0, height % m == 0, width % m == 0 else {
            throw .config("latent size \(height)x\(width) is not a positive multiple of \(m) (the UNet downsamples by \(m))")
        }
    }

    /// Validates the inputs of a forward call; preconditions because a wrong shape here is a
    /// programming error of the caller (the pipeline checks sizes up front with `checkLatentSize`).
    func checkInputs(_ latents: Tensor, timesteps: [Float], context: Tensor) {
        precondition(latents.rank == 4 && latents.shape[3] == inChannels, "latents \(latents.shape): want [n, h, w, \(inChannels)]")
        let (n, h, w) = (latents.shape[0], latents.shape[1], latents.shape[2])
        precondition(h % latentSizeMultiple == 0 && w % latentSizeMultiple == 0,
                     "latent size \(h)x\(w) is not a multiple of \(latentSizeMultiple)")
        precondition(timesteps.count == n || timesteps.count == 1, "\(timesteps.count) timesteps for a batch of \(n)")
        precondition(context.rank == 3 && context.shape[0] == n && context.shape[2] == contextChannels,
                     "context \(context.shape): want [\(n), tokens, \(contextChannels)]")
    }
}

/// One timestep per batch element (a single value is repeated, as diffusers expands a scalar).
func perElement(_ timesteps: [Float], batch: Int) -> [Float] {
    timesteps.count == batch ? timesteps : [Float](repeating: timesteps[0], count: batch)
}

/// Profile label of an NHWC activation: `640ch 32x32`.
func site(_ t: Tensor) -> String { "\(t.shape[3])ch \(t.shape[1])x\(t.shape[2])" }
