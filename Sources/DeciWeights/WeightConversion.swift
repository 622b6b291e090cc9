import DeciTensor
import Dispatch

/// Bit-exact element conversions between the floating formats checkpoints use.
///
/// Sources are raw pointers read with unaligned loads (safetensors does not promise that a
/// tensor's bytes are aligned for its dtype). Conversions match PyTorch on CPU:
/// f16 -> f32 and bf16 -> f32 are exact (NaN payloads kept); f32 -> bf16 rounds to nearest even,
/// inf stays inf, finite values past the bf16 range become inf, and NaN stays a quiet NaN with its
/// sign (PyTorch's scalar and vector paths disagree on the NaN bit pattern, so only NaN-ness is a
/// contract). f64 -> f32 uses the IEEE round-to-nearest-even conversion, as `tensor.float()` does.
///
/// The f16 path is written with integer operations and an exact integer-to-float scaling for
/// subnormals instead of `Float16` so it vectorises on baseline x86-64 (no F16C) and does not depend
/// on the denormals-are-zero state a compute library may have set on the thread. Large conversions
/// are split across cores.
public enum WeightConversion {
    /// Elements per task when a conversion is split across threads; below twice this it runs inline.
    static let parallelChunk = 1 << 20

    /// The f32 value of IEEE half-precision bits.
    @inline(__always)
    public static func float(fromHalfBits h: UInt16) -> Float {
        Float(bitPattern: floatBits(fromHalfBits: h))
    }

    @inline(__always)
    static func floatBits(fromHalfBits h: UInt16) -> UInt32 {
        let h32 = UInt32(h)
        let sign = (h32 & 0x8000) << 16
        let magnitude = h32 & 0x7FFF
        let exponent = h32 & 0x7C00
        // Normal numbers: rebias the exponent (15 -> 127) by adding 112 << 23.
        let normal = (magnitude << 13) &+ 0x3800_0000
        let infOrNaN = (magnitude << 13) | 0x7F80_0000
        // Subnormals (exponent 0, including zero): value = mantissa * 2^-24, exact in f32.
        let subnormal = (Float(Int32(bitPattern: magnitude)) * 0x1p-24).bitPattern
        let bits = exponent == 0x7C00 ? infOrNaN : (exponent == 0 ? subnormal : normal)
        return sign | bits
    }

    /// The f32 value of bfloat16 bits (exact).
    @inline(__always)
    public static func float(fromBFloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// `x` rounded to bfloat16 (nearest, ties to even), as bits.
    @inline(__always)
    public static func bfloat16Bits(from x: Float) -> UInt16 {
        bfloat16Bits(fromFloatBits: x.bitPattern)
    }

    @inline(__always)
    static func bfloat16Bits(fromFloatBits u: UInt32) -> UInt16 {
        let isNaN = (u & 0x7FFF_FFFF) > 0x7F80_0000
        let rounded = (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16
        let quietNaN = (u >> 16) | 0x0040
        return UInt16(truncatingIfNeeded: isNaN ? quietNaN : rounded)
    }

    /// `x` rounded to IEEE half precision (nearest, ties to even; past the range becomes inf; NaN
    /// becomes the quiet NaN `0x7E00` with its sign, as PyTorch's scalar conversion does), as bits.
    /// Not on a hot path: the engine never writes f16.
    public static func halfBits(from x: Float) -> UInt16 {
        let u = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (u >> 16) & 0x8000)
        let magnitude = u & 0x7FFF_FFFF
        if magnitude > 0x7F80_0000 { return sign | 0x7E00 }
        if magnitude >= 0x477F_F000 { return sign | 0x7C00 }  // >= 65520 rounds past 65504
        if magnitude >= 0x3880_0000 {  // a normal half: round the 13 dropped bits, then rebias
            let rounded = magnitude &+ 0xFFF &+ ((magnitude >> 13) & 1)
            return sign | UInt16(truncatingIfNeeded: (rounded &- 0x3800_0000) >> 13)
        }
        // Subnormal half (or zero): the mantissa is the value in units of 2^-24; scaling by 2^24
        // is exact, and rounding to 1024 correctly yields the smallest normal.
        let units = (Float(bitPattern: magnitude) * 0x1p24).rounded(.toNearestOrEven)
        return sign | UInt16(units)
    }

    // MARK: Bulk conversions (count elements, source read unaligned)

    /// Converts `count` elements of `source` (laid out as `dtype`) to f32.
    /// - Precondition: `dtype.isConvertibleToFloat`.
    public static func convertToFloat(_ source: UnsafeRawPointer, dtype: WeightDType,
                                      into destination: UnsafeMutablePointer<Float>, count: Int) {
        switch dtype {
        case .F32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .F16:
            // Vectorised in the kernel layer (F16C where available); same values as the scalar path.
            HostConversion.halfToFloat(source, into: destination, count: count)
        case .BF16:
            parallel(count) { range in
                for i in range {
                    destination[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                }
            }
        case .F64:
            parallel(count) { range in
                for i in range {
                    destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
                }
            }
        default:
            preconditionFailure("convertToFloat: \(dtype) is not a floating dtype")
        }
    }

    /// Converts `count` elements of `source` (laid out as `dtype`) to bfloat16 bits.
    /// - Precondition: `dtype.isConvertibleToFloat`.
    public static func convertToBFloat16(_ source: UnsafeRawPointer, dtype: WeightDType,
                                         into destination: UnsafeMutablePointer<UInt16>, count: Int) {
        switch dtype {
        case .BF16:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 2)
        case .F32:
            parallel(count) { range in
                for i in range {
                    destination[i] = bfloat16Bits(fromFloatBits: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                }
            }
        case .F16:
            parallel(count) { range in
                for i in range {
                    destination[i] = bfloat16Bits(fromFloatBits: floatBits(fromHalfBits: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            }
        case .F64:
            parallel(count) { range in
                for i in range {
                    destination[i] = bfloat16Bits(from: Float(source.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)))
                }
            }
        default:
            preconditionFailure("convertToBFloat16: \(dtype) is not a floating dtype")
        }
    }

    /// Runs `body` over `0..<count`, in parallel chunks when the work is large enough to pay for it.
    static func parallel(_ count: Int, _ body: (Range<Int>) -> Void) {
        let chunks = count / parallelChunk
        if chunks < 2 {
            body(0..<count)
            return
        }
        // Each chunk writes a disjoint range, so sharing `body` across threads is safe even though
        // the closure (capturing raw pointers) cannot be proven Sendable.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let start = c * parallelChunk
                let end = c == chunks - 1 ? count : start + parallelChunk
                shared.value(start..<end)
            }
        }
    }
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
