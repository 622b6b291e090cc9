// Weightless placeholder layers, the op layer's counterpart of torch's meta device: a model built
// against a recording weight store (to list its checkpoint keys and shapes) gets layers that know
// their shape but hold no weights and no kernel, so planning a full-size UNet allocates nothing.
// Running one is a programming error and stops with a message saying so.

extension Conv2d {
    /// A conv layer with this geometry and no weights; it cannot run.
    public static func placeholder(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                                   extraBottomRight: Int = 0, precision: Precision) -> Conv2d {
        Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
               extraBottomRight: extraBottomRight, precision: precision, handle: nil)
    }

    /// Whether this is a weightless placeholder.
    public var isPlaceholder: Bool { handle == nil }

    /// The packed kernel; a placeholder has none.
    var kernel: OpaquePointer { requireKernel(handle, "Conv2d(\(inChannels)->\(outChannels), \(kernelSize.0)x\(kernelSize.1))") }
}

extension Linear {
    /// A linear layer with this shape and no weights; it cannot run.
    public static func placeholder(inFeatures: Int, outFeatures: Int, precision: Precision) -> Linear {
        Linear(inFeatures: inFeatures, outFeatures: outFeatures, precision: precision, handle: nil)
    }

    /// Whether this is a weightless placeholder.
    public var isPlaceholder: Bool { handle == nil }

    /// The packed kernel; a placeholder has none.
    var kernel: OpaquePointer { requireKernel(handle, "Linear(\(inFeatures)->\(outFeatures))") }
}

extension GroupNorm {
    /// A GroupNorm with this shape and no affine parameters; it cannot run.
    public static func placeholder(groups: Int, channels: Int, eps: Float) -> GroupNorm {
        GroupNorm(groups: groups, channels: channels, eps: eps, weight: [], bias: [], isPlaceholder: true)
    }
}

extension LayerNorm {
    /// A LayerNorm with this width and no affine parameters; it cannot run.
    public static func placeholder(channels: Int, eps: Float) -> LayerNorm {
        LayerNorm(channels: channels, eps: eps, weight: [], bias: [], isPlaceholder: true)
    }
}

extension Embedding {
    /// A `[count, dim]` table with no rows stored; it cannot run.
    public static func placeholder(count: Int, dim: Int) -> Embedding { Embedding(count: count, dim: dim, table: nil) }

    /// Whether this is a weightless placeholder.
    public var isPlaceholder: Bool { table == nil }
}

/// Stops on an attempt to run a placeholder layer: a model built for a parameter plan is only ever
/// inspected, so reaching a forward pass is a programming error.
func placeholderRun(_ layer: String) -> Never {
    preconditionFailure("\(layer) is a weightless placeholder from a parameter plan and cannot run")
}

/// A layer's packed kernel, stopping (``placeholderRun(_:)``) when the layer is a placeholder.
func requireKernel(_ handle: OpaquePointer?, _ layer: @autoclosure () -> String) -> OpaquePointer {
    guard let handle else { placeholderRun(layer()) }
    return handle
}
