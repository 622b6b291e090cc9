import CDeciKernels

/// Arithmetic used by matrix multiplications and convolutions. Norms, softmax and residual adds
/// always run in float32.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// float32 everywhere.
    case f32
    /// bfloat16 matmul/conv inputs and weights, float32 accumulation and outputs.
    case bf16

    var kernelType: dd_dtype { self == .bf16 ? DD_BF16 : DD_F32 }
}

/// Process-wide settings of the CPU backend.
public enum Backend {
    /// Threads used by all kernels (one shared pool). Set before heavy work; 0 = all cores.
    public static var threads: Int {
        get { Int(dd_num_threads()) }
        set { dd_set_num_threads(Int32(newValue)) }
    }

    /// oneDNN version, instruction set and thread count.
    public static var info: String { String(cString: dd_backend_info()) }

    /// Whether oneDNN has native bf16 kernels on this CPU; without them `.bf16` is emulated in
    /// float32 with the same rounding of inputs and weights.
    public static var hasNativeBF16: Bool { dd_bf16_native() != 0 }

    /// Returns cached activation buffers to the system (e.g. between pipeline stages).
    public static func trimMemory() { dd_pool_trim() }

    public static var cachedBytes: Int { dd_pool_cached_bytes() }

    /// Runs `body` with every automatic 3x3 convolution on this thread using Winograd whenever its
    /// geometry allows, whatever the input size: for tests of whole models on small shapes.
    public static func forcingWinograd<R>(_ body: () throws -> R) rethrows -> R {
        dd_set_winograd_forced(1)
        defer { dd_set_winograd_forced(0) }
        return try body()
    }
}

/// How a 3x3, stride-1, pad-1 float32 convolution (channel counts multiples of 16) is computed.
public enum ConvAlgorithm: Sendable {
    /// Winograd F(4x4, 3x3) when the input is large enough to pay for it (>= 64 channels and
    /// >= 128 output tiles of 4x4), direct otherwise.
    case auto
    /// Always direct convolution (oneDNN).
    case direct
    /// Winograd whenever the geometry allows it: 2.5-3.5x fewer seconds on large inputs, rounding a
    /// few times that of direct convolution (its weights: see `Conv2d.keepsWinogradWeights`).
    case winograd

    var kernel: dd_conv_algorithm {
        switch self {
        case .auto: DD_CONV_AUTO
        case .direct: DD_CONV_DIRECT
        case .winograd: DD_CONV_WINOGRAD
        }
    }
}

/// Fused activation applied by a layer's kernel.
public enum Activation: Sendable {
    case none, silu, geluErf, geluTanh, quickGelu

    var kernel: dd_activation {
        switch self {
        case .none: DD_ACT_NONE
        case .silu: DD_ACT_SILU
        case .geluErf: DD_ACT_GELU_ERF
        case .geluTanh: DD_ACT_GELU_TANH
        case .quickGelu: DD_ACT_QUICK_GELU
        }
    }
}

/// A failure building a kernel (bad geometry, no oneDNN implementation, out of memory).
public struct KernelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Runs a shim call that reports failures into a C string buffer; returns its result and message.
func withErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>, Int32) -> T) -> (T, String) {
    let count = 512
    let buf = UnsafeMutablePointer<CChar>.allocate(capacity: count)
    buf.initialize(repeating: 0, count: count)
    defer { buf.deallocate() }
    let r = body(buf, Int32(count))
    return (r, String(cString: buf))
}
