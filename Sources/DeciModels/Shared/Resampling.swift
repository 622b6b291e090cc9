// diffusers `Downsample2D` / `Upsample2D` (downsampling.py, upsampling.py). Activations are NHWC; property names are the checkpoint keys.
import DeciTensor
import DeciWeights

/// diffusers `Downsample2D` with a conv: 3x3 stride 2. `padding` 1 in the UNets; the VAE encoder
/// uses padding 0 after padding bottom/right by one.
public final class Downsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, vaeStylePadding: Bool = false, precision: Precision) throws(ModelError) {
        conv = try w.conv("conv", in: channels, out: channels, kernel: 3, stride: 2, padding: vaeStylePadding ? 0 : 1,
                          extraBottomRight: vaeStylePadding ? 1 : 0, precision: precision)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x) }
}

/// diffusers `Upsample2D` with a conv: nearest 2x, then 3x3.
public final class Upsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, precision: Precision) throws(ModelError) {
        conv = try w.conv("conv", in: channels, out: channels, kernel: 3, precision: precision)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(upsampling2x: x) }
}
