/// A source of standard-normal noise for initial latents, img2img noise, VAE sampling and
/// ancestral/eta scheduler noise. Passed `inout` so each image owns its stream: no global state.
public protocol RandomSource {
    /// `count` samples in the order `torch.randn(shape)` fills a contiguous tensor with `count` elements.
    mutating func normal(count: Int) -> [Float]
}
