import CDeciKernels

/// 2-D convolution over NHWC activations (oneDNN). Weights arrive in PyTorch's `[out, in, kh, kw]`
/// order and are packed once for the chosen precision.
public final class Conv2d: @unchecked Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelSize: (Int, Int)
    public let stride: Int
    /// Zero padding per side: top, left, bottom, right.
    public let padding: (top: Int, left: Int, bottom: Int, right: Int)
    public let precision: Precision
    /// The packed kernel; nil for a weightless placeholder (see `Layers+Placeholder.swift`).
    let handle: OpaquePointer?

    /// `padding` pads all four sides; `extraBottomRight` adds to the bottom and right only (the VAE
    /// encoder's downsampler pads (0, 1, 0, 1)).
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, extraBottomRight: Int = 0,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, precision: Precision) throws(KernelError) {
        let (h, msg) = withErrorBuffer { err, len in
            dd_conv_create(Int32(inChannels), Int32(outChannels), Int32(kernelSize), Int32(kernelSize), Int32(stride),
                           Int32(padding), Int32(padding), Int32(padding + extraBottomRight), Int32(padding + extraBottomRight),
                           precision.kernelType, weight, bias, err, len)
        }
        guard let h else { throw KernelError(msg) }
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                  extraBottomRight: extraBottomRight, precision: precision, handle: h)
    }

    /// The geometry and its packed kernel, nil for a weightless placeholder (`Conv2d.placeholder`).
    init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int, padding: Int, extraBottomRight: Int, precision: Precision,
         handle: OpaquePointer?) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = (kernelSize, kernelSize)
        self.stride = stride
        self.padding = (padding, padding, padding + extraBottomRight, padding + extraBottomRight)
        self.precision = precision
        self.handle = handle
    }

    /// Weights as arrays (tests, small models).
    public convenience init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            extraBottomRight: Int = 0, weight: [Float], bias: [Float]?, precision: Precision) throws(KernelError) {
        guard weight.count == outChannels * inChannels * kernelSize * kernelSize else {
            throw KernelError("conv weight has \(weight.count) values, want \(outChannels)x\(inChannels)x\(kernelSize)x\(kernelSize)")
        }
        if let bias, bias.count != outChannels { throw KernelError("conv bias has \(bias.count) values, want \(outChannels)") }
        let w = stableCopy(weight), b = bias.map(stableCopy)
        defer { w.deallocate(); b?.deallocate() }
        try self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                      extraBottomRight: extraBottomRight, weight: w, bias: b.map { UnsafePointer($0) }, precision: precision)
    }

    deinit { if let handle { dd_conv_destroy(handle) } }

    /// How 3x3 stride-1 convolutions run (see `ConvAlgorithm`). Set before first use.
    public var algorithm: ConvAlgorithm = .auto { didSet { applyAlgorithm() } }

    /// Whether Winograd weights, once built, replace the direct ones for good (4x their memory)
    /// instead of being rebuilt from them for each call (no lasting memory; measured as fast on
    /// UNet steps and VAE decodes, where building them is small next to the GEMMs). Set before
    /// first use.
    public var keepsWinogradWeights = false { didSet { applyAlgorithm() } }

    private func applyAlgorithm() {
        if let handle { dd_conv_set_algorithm(handle, algorithm.kernel, keepsWinogradWeights ? 1 : 0) }
    }

    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        ((height + padding.top + padding.bottom - kernelSize.0) / stride + 1,
         (width + padding.left + padding.right - kernelSize.1) / stride + 1)
    }

    /// `act(conv(x) + bias) + residual` for x `[n, h, w, inChannels]`.
    public func callAsFunction(_ x: Tensor, activation: Activation = .none, residual: Tensor? = nil) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inChannels, "Conv2d(\(inChannels)->\(outChannels)) got input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = outputSize(height: h, width: w)
        let shape = [n, oh, ow, outChannels]
        if let residual { precondition(residual.shape == shape, "residual \(residual.shape) != conv output \(shape)") }
        let handle = kernel
        if Fault.skips("conv", x, residual) { return Tensor(shape: shape) }
        return run("conv\(kernelSize.0)x\(kernelSize.1)\(stride > 1 ? "/\(stride)" : "") \(inChannels)->\(outChannels)@\(w)",
                   output: shape) { out, err, len in
            dd_conv_forward(handle, Int32(n), Int32(h), Int32(w), x.pointer, out.pointer, residual?.pointer, activation.kernel, err, len)
        }
    }

    /// `conv(nearest 2x upsampling of x)` for x `[n, h, w, inChannels]` (diffusers' `Upsample2D`):
    /// the same numbers as `self(Ops.upsampleNearest2x(x))`, but a Winograd layer reads x directly
    /// and the 4x larger upsampled map is never built.
    public func callAsFunction(upsampling2x x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == inChannels, "Conv2d(\(inChannels)->\(outChannels)) got input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = outputSize(height: 2 * h, width: 2 * w)
        let handle = kernel
        if Fault.skips("upsample+conv", x) { return Tensor(shape: [n, oh, ow, outChannels]) }
        return run("upsample+conv\(kernelSize.0)x\(kernelSize.1) \(inChannels)->\(outChannels)@\(2 * w)",
                   output: [n, oh, ow, outChannels]) { out, err, len in
            dd_conv_forward_upsampled(handle, Int32(n), Int32(h), Int32(w), x.pointer, out.pointer, err, len)
        }
    }

    /// Allocates the output, runs the kernel call under the op profiler and stops on its error.
    private func run(_ label: String, output shape: [Int], _ call: (Tensor, UnsafeMutablePointer<CChar>, Int32) -> Int32) -> Tensor {
        let out = Tensor(shape: shape)
        if Fault.skips(label, out) { return out }
        let (rc, msg) = OpProfile.measure(label) { withErrorBuffer { err, len in call(out, err, len) } }
        Fault.check(rc, op: label, msg)
        return out
    }
}

/// `y = x W^T + b` over the last axis (oneDNN matmul), weights in PyTorch's `[out, in]` order.
public final class Linear: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let precision: Precision
    /// The packed kernel; nil for a weightless placeholder (see `Layers+Placeholder.swift`).
    let handle: OpaquePointer?

    public convenience init(inFeatures: Int, outFeatures: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            precision: Precision) throws(KernelError) {
        let (h, msg) = withErrorBuffer { err, len in
            dd_linear_create(Int32(inFeatures), Int32(outFeatures), precision.kernelType, weight, bias, err, len)
        }
        guard let h else { throw KernelError(msg) }
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, precision: precision, handle: h)
    }

    /// The shape and its packed kernel, nil for a weightless placeholder (`Linear.placeholder`).
    init(inFeatures: Int, outFeatures: Int, precision: Precision, handle: OpaquePointer?) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.precision = precision
        self.handle = handle
    }

    /// Weights as arrays (tests, small models).
    public convenience init(inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float]?, precision: Precision) throws(KernelError) {
        guard weight.count == inFeatures * outFeatures else {
            throw KernelError("linear weight has \(weight.count) values, want \(outFeatures)x\(inFeatures)")
        }
        if let bias, bias.count != outFeatures { throw KernelError("linear bias has \(bias.count) values, want \(outFeatures)") }
        let w = stableCopy(weight), b = bias.map(stableCopy)
        defer { w.deallocate(); b?.deallocate() }
        try self.init(inFeatures: inFeatures, outFeatures: outFeatures, weight: w, bias: b.map { UnsafePointer($0) }, precision: precision)
    }

    deinit { if let handle { dd_linear_destroy(handle) } }

    /// Applies to every row of `x` (any leading shape, last axis `inFeatures`).
    public func callAsFunction(_ x: Tensor, activation: Activation = .none, residual: Tensor? = nil) -> Tensor {
        precondition(x.channels == inFeatures, "Linear(\(inFeatures)->\(outFeatures)) got input \(x.shape)")
        return self(x.matrix, shape: Array(x.shape.dropLast()) + [outFeatures], activation: activation, residual: residual)
    }

    /// Applies to a strided matrix view; the result has `shape` (its element count rows x outFeatures).
    public func callAsFunction(_ x: MatrixView, shape: [Int], activation: Activation = .none, residual: Tensor? = nil) -> Tensor {
        precondition(x.cols == inFeatures, "Linear(\(inFeatures)->\(outFeatures)) got \(x.cols) columns")
        let handle = kernel
        let out = Tensor(shape: shape)
        precondition(out.count == x.rows * outFeatures, "output shape \(shape) does not hold \(x.rows)x\(outFeatures)")
        if let residual { precondition(residual.count == out.count, "residual \(residual.shape) != linear output \(shape)") }
        if Fault.skips("linear \(inFeatures)->\(outFeatures)", x.base, residual, out) { return out }
        let (rc, msg) = OpProfile.measure("linear \(inFeatures)->\(outFeatures)") {
            withErrorBuffer { err, len in
                dd_linear_forward(handle, x.rows, x.pointer, x.ld, out.pointer, residual?.pointer, activation.kernel, err, len)
            }
        }
        Fault.check(rc, op: "linear \(inFeatures)->\(outFeatures)", msg)
        return out
    }
}

/// GroupNorm over NHWC activations with per-channel affine parameters.
public struct GroupNorm: Sendable {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    public let weight: [Float]
    public let bias: [Float]
    /// A weightless stand-in from a parameter plan (see `Layers+Placeholder.swift`), never run.
    public let isPlaceholder: Bool

    public init(groups: Int, channels: Int, eps: Float, weight: [Float], bias: [Float]) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        precondition(weight.count == channels && bias.count == channels, "GroupNorm: affine parameters must have \(channels) values")
        self.init(groups: groups, channels: channels, eps: eps, weight: weight, bias: bias, isPlaceholder: false)
    }

    init(groups: Int, channels: Int, eps: Float, weight: [Float], bias: [Float], isPlaceholder: Bool) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        self.weight = weight
        self.bias = bias
        self.isPlaceholder = isPlaceholder
    }

    /// Normalises `x` (`[n, ..., channels]`), optionally after adding a per-(n, channel) bias
    /// `addBias` (`[n, channels]`, the resnet's time embedding) and with SiLU fused.
    public func callAsFunction(_ x: Tensor, silu: Bool = false, addBias: Tensor? = nil) -> Tensor {
        if isPlaceholder { placeholderRun("GroupNorm(\(channels))") }
        precondition(x.channels == channels, "GroupNorm(\(channels)) got \(x.shape)")
        let n = x.shape[0]
        if let addBias { precondition(addBias.count == n * channels, "GroupNorm bias \(addBias.shape) != [\(n), \(channels)]") }
        let out = Tensor(shape: x.shape)
        if Fault.skips("groupnorm", x, addBias, out) { return out }
        OpProfile.measure("groupnorm\(silu ? "+silu" : "")") {
        weight.withUnsafeBufferPointer { g in
            bias.withUnsafeBufferPointer { b in
                dd_group_norm(x.pointer, out.pointer, n, x.count / (n * channels), channels, groups, eps, g.baseAddress,
                              b.baseAddress, addBias?.pointer, silu ? 1 : 0)
            }
        }
        }
        return out
    }
}

/// LayerNorm over the last axis.
public struct LayerNorm: Sendable {
    public let channels: Int
    public let eps: Float
    public let weight: [Float]
    public let bias: [Float]

    /// A weightless stand-in from a parameter plan (see `Layers+Placeholder.swift`), never run.
    public let isPlaceholder: Bool

    public init(channels: Int, eps: Float, weight: [Float], bias: [Float]) {
        precondition(weight.count == channels && bias.count == channels, "LayerNorm: parameters must have \(channels) values")
        self.init(channels: channels, eps: eps, weight: weight, bias: bias, isPlaceholder: false)
    }

    init(channels: Int, eps: Float, weight: [Float], bias: [Float], isPlaceholder: Bool) {
        self.channels = channels
        self.eps = eps
        self.weight = weight
        self.bias = bias
        self.isPlaceholder = isPlaceholder
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if isPlaceholder { placeholderRun("LayerNorm(\(channels))") }
        precondition(x.channels == channels, "LayerNorm(\(channels)) got \(x.shape)")
        let out = Tensor(shape: x.shape)
        if Fault.skips("layernorm", x, out) { return out }
        OpProfile.measure("layernorm") {
            weight.withUnsafeBufferPointer { g in
                bias.withUnsafeBufferPointer { b in
                    dd_layer_norm(x.pointer, out.pointer, x.rows, channels, eps, g.baseAddress, b.baseAddress)
                }
            }
        }
        return out
    }
}

/// A lookup table `[count, dim]` (torch's `nn.Embedding`): index `i` selects row `i`.
public struct Embedding: Sendable {
    public let count: Int
    public let dim: Int
    /// nil for a weightless placeholder (see `Layers+Placeholder.swift`).
    let table: Tensor?

    /// A table of rank 2.
    public init(table: Tensor) {
        precondition(table.rank == 2, "Embedding: the table must be [count, dim], got \(table.shape)")
        self.init(count: table.shape[0], dim: table.shape[1], table: table)
    }

    init(count: Int, dim: Int, table: Tensor?) {
        self.count = count
        self.dim = dim
        self.table = table
    }

    /// The rows of `indices`, `[indices.count, dim]`.
    public func callAsFunction(_ indices: [Int]) -> Tensor {
        guard let table else { placeholderRun("Embedding(\(count)x\(dim))") }
        return Ops.gatherRows(table, indices)
    }
}

/// A heap copy whose address stays valid until deallocated: an array's buffer pointer is only valid
/// inside `withUnsafeBufferPointer`, and the layer initialisers need one across a delegating call.
private func stableCopy(_ values: [Float]) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
    p.initialize(from: values, count: values.count)
    return p
}
