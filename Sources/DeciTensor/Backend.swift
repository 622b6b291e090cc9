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

    /// Whether native bf16 3x3 convolutions run Winograd F(2x2, 3x3) (see `ConvAlgorithm`): bf16
    /// is native and `DECI_WINOGRAD_BF16=0` did not turn it off. False where bf16 is emulated (its
    /// convolutions run float32 F(4x4, 3x3) on bf16-rounded values instead).
    public static var runsBF16Winograd: Bool { dd_winograd_bf16() != 0 }

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

/// How a 3x3, stride-1, pad-1 convolution (channel counts multiples of 16) is computed. Winograd
/// is F(4x4, 3x3) in float32 and in emulated bf16, and F(2x2, 3x3) with bf16 operands (float32
/// transforms and accumulation) where bf16 is native: F(4x4)'s transformed tiles rounded to bf16
/// would cost ~10x the error of a direct bf16 convolution, F(2x2)'s cost ~1.7x.
public enum ConvAlgorithm: Sendable {
    /// Winograd when the input is large enough to pay for it (>= 64 channels and >= 128 output
    /// tiles of 4x4), direct otherwise.
    case auto
    /// Always direct convolution (oneDNN).
    case direct
    /// Winograd whenever the geometry allows it: 2.5-3.5x fewer seconds on large inputs in float32
    /// (native bf16 F(2x2): 1.4-1.8x fewer CPU seconds than direct bf16), rounding a few times that
    /// of direct convolution (its weights: see `Conv2d.keepsWinogradWeights`).
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
