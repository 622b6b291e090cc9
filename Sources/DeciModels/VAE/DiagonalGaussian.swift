// diffusers `autoencoders/vae.py` DiagonalGaussianDistribution, diffusers 0.42.
import DeciTensor

/// diffusers `DiagonalGaussianDistribution`: the encoder's latent posterior. `logvar` is clamped
/// to [-30, 20] and `std = exp(0.5 * logvar)`, as diffusers computes them. All NHWC
/// `[n, h, w, latentChannels]`.
public struct DiagonalGaussian: Sendable {
    public let mean: Tensor
    public let logvar: Tensor
    public let std: Tensor

    /// From the quant_conv output `[n, h, w, 2 * latentChannels]`: first half mean, second half
    /// log-variance.
    public init(moments: Tensor) {
        precondition(moments.rank == 4 && moments.channels % 2 == 0, "DiagonalGaussian: moments must be NHWC with even channels, got \(moments.shape)")
        let g = Ops.diagonalGaussian(moments)
        mean = g.mean
        logvar = g.logvar
        std = g.std
    }

    /// The most likely latents (diffusers `mode()`).
    public var mode: Tensor { mean }

    /// `mean + std * noise` for standard-normal `noise` of the same NHWC shape, drawn by the caller
    /// (diffusers draws it NCHW with `randn_tensor`; convert with `Tensor.fromNCHW`).
    public func sample(noise: Tensor) -> Tensor {
        precondition(noise.shape == mean.shape, "DiagonalGaussian.sample: noise \(noise.shape) must match the latents \(mean.shape)")
        return Ops.gaussianSample(mean: mean, std: std, noise: noise)
    }
}
