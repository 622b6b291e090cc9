// diffusers `ResnetBlock2D` (resnet.py), shared by both UNets and the VAE. Activations are NHWC; property names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers `ResnetBlock2D`: GroupNorm, SiLU, conv3x3, (+ time embedding), GroupNorm, SiLU,
/// conv3x3, plus a 1x1 shortcut when the width changes.
public final class ResnetBlock2D: @unchecked Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d
    let time_emb_proj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    let conv_shortcut: Conv2d?

    public init(_ w: WeightScope, in cin: Int, out cout: Int, tembChannels: Int?, groups: Int = 32, eps: Float,
                precision: Precision) throws(ModelError) {
        norm1 = try w.groupNorm("norm1", groups: groups, channels: cin, eps: eps)
        conv1 = try w.conv("conv1", in: cin, out: cout, kernel: 3, precision: precision)
        time_emb_proj = try tembChannels.map { (t: Int) throws(ModelError) in
            try w.linear("time_emb_proj", in: t, out: cout, precision: precision)
        }
        norm2 = try w.groupNorm("norm2", groups: groups, channels: cout, eps: eps)
        conv2 = try w.conv("conv2", in: cout, out: cout, kernel: 3, precision: precision)
        conv_shortcut = cin == cout ? nil : try w.conv("conv_shortcut", in: cin, out: cout, kernel: 1, precision: precision)
    }

    /// `x` `[n, h, w, in]`; `tembSilu` is SiLU(time embedding) `[n, temb]`, shared by all blocks.
    public func callAsFunction(_ x: Tensor, tembSilu: Tensor? = nil) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        let tproj = time_emb_proj.flatMap { proj in tembSilu.map { proj($0) } }
        h = norm2(h, silu: true, addBias: tproj)
        let shortcut = conv_shortcut?(x) ?? x
        return conv2(h, residual: shortcut)
    }
}
