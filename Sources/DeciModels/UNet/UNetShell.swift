// The parts every SD-family UNet shares: diffusers UNet2DConditionModel's conv_in, time_proj +
// time_embedding, conv_norm_out, conv_act and conv_out; each UNet adds only its blocks.
// Activations NHWC; property names are checkpoint keys (the shell's modules sit at the root).
import DeciTensor
import DeciWeights

/// conv_in, the time embedding and the output head of an SD-family UNet, read from the root of its
/// checkpoint. A UNet's forward pass is `shell(latents, timesteps) { its blocks }`.
final class UNetShell: @unchecked Sendable {
    let conv_in: Conv2d
    let time_embedding: TimestepEmbedding
    let conv_norm_out: GroupNorm
    let conv_out: Conv2d

    init(_ w: WeightScope, config shell: UNetShellConfig, precision: Precision) throws(ModelError) {
        let base = shell.baseChannels
        conv_in = try w.conv("conv_in", in: shell.inChannels, out: base, kernel: shell.convInKernel, precision: precision)
        time_embedding = try TimestepEmbedding(w.scoped("time_embedding."), projectionChannels: base,
                                               embeddingChannels: shell.timeEmbeddingChannels, flipSinToCos: shell.flipSinToCos,
                                               freqShift: shell.freqShift, precision: precision)
        conv_norm_out = try w.groupNorm("conv_norm_out", groups: shell.normNumGroups ?? 32, channels: base, eps: shell.normEps)
        conv_out = try w.conv("conv_out", in: base, out: shell.outChannels, kernel: shell.convOutKernel, precision: precision)
    }

    /// Runs conv_in and the time embedding, hands `blocks` the features and SiLU(time embedding)
    /// (what every resnet reads), and applies the output head to what the blocks return.
    func callAsFunction(_ latents: Tensor, timesteps: [Float], blocks: (_ h: Tensor, _ tembSilu: Tensor) -> Tensor) -> Tensor {
        let emb = OpProfile.measure(module: "time embedding") { time_embedding(perElement(timesteps, batch: latents.shape[0])) }
        let tembSilu = Ops.silu(emb)
        let h = OpProfile.measure(module: "conv_in") { conv_in(latents) }
        let out = blocks(h, tembSilu)
        return OpProfile.measure(module: "output head") { conv_out(conv_norm_out(out, silu: true)) }
    }

}
