#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Matches PyTorch's CPUGeneratorImpl (aten/src/ATen/CPUGeneratorImpl.cpp) and the CPU `normal_` /
// `uniform_` kernels (aten/src/ATen/native/cpu/DistributionTemplates.h,
// aten/src/ATen/core/DistributionsHelper.h, aten/src/ATen/core/TransformationHelper.h).

/// Floating-point element types `torch.randn` can be asked for. Half-precision draws use the same
/// stream as float32 and round each value at the end, as PyTorch does.
public enum TorchFloatType: String, Sendable, CaseIterable {
    case float32
    case float16
    case bfloat16
}

/// A random source that reproduces `torch.Generator("cpu").manual_seed(seed)` bit for bit:
/// `normal(count:)` returns exactly what `torch.randn(count, generator: g, dtype: torch.float32)`
/// returns, and consecutive calls continue the stream as consecutive torch calls on one generator do.
///
/// PyTorch draws tensors with fewer than 16 elements one element at a time (Box-Muller in double,
/// caching the second value of each pair in the generator), and larger float tensors in blocks of
/// 16 (float Box-Muller on uniforms drawn for the whole tensor first, then 16 fresh uniforms that
/// overwrite the last 16 values when the size is not a multiple of 16). Both paths and the cached
/// value are reproduced; the cached value survives large draws, as in PyTorch.
public struct TorchRandomSource: RandomSource, Sendable {
    private var engine: MT19937
    /// The second Box-Muller value of the last scalar-path pair, used by the next scalar draw.
    private var cachedNormal: Double?
    /// Which PyTorch CPU kernel the block path reproduces.
    public var kernel: TorchNormalKernel

    /// The seed as `torch.Generator.initial_seed()` reports it.
    public var seed: UInt64 { engine.seed }

    /// A generator seeded as `torch.Generator("cpu").manual_seed(seed)`.
    public init(seed: UInt64, kernel: TorchNormalKernel = .avx2) {
        engine = MT19937(seed: seed)
        cachedNormal = nil
        self.kernel = kernel
    }

    /// A generator for a signed seed: PyTorch accepts seeds from -2^63 and stores negative ones as
    /// their two's-complement 64-bit pattern (so -1 is the same generator as 2^64 - 1).
    public init(signedSeed: Int64, kernel: TorchNormalKernel = .avx2) {
        self.init(seed: UInt64(bitPattern: signedSeed), kernel: kernel)
    }

    /// Re-seeds in place, dropping any cached normal value, as `Generator.manual_seed` does.
    public mutating func manualSeed(_ seed: UInt64) {
        engine = MT19937(seed: seed)
        cachedNormal = nil
    }

    /// One raw 32-bit draw (`CPUGeneratorImpl::random`).
    public mutating func nextUInt32() -> UInt32 { engine.next() }

    /// One raw 64-bit draw: two 32-bit draws, the first in the high half (`CPUGeneratorImpl::random64`).
    public mutating func nextUInt64() -> UInt64 {
        let hi = UInt64(engine.next())
        let lo = UInt64(engine.next())
        return (hi << 32) | lo
    }

    /// `count` standard normals, exactly `torch.randn(count, generator=g)` in float32.
    public mutating func normal(count: Int) -> [Float] {
        normal(count: count, dtype: .float32)
    }

    /// Standard normals for a contiguous tensor of `shape` (one torch call for the whole shape, which
    /// is what diffusers' `randn_tensor` does with a single CPU generator).
    public mutating func normal(shape: [Int], dtype: TorchFloatType = .float32) -> [Float] {
        normal(count: shape.reduce(1, *), dtype: dtype)
    }

    /// `count` standard normals as `torch.randn(count, generator=g, dtype=dtype)` returns them, widened
    /// to Float (half-precision values are exactly representable).
    public mutating func normal(count: Int, dtype: TorchFloatType) -> [Float] {
        precondition(count >= 0, "normal(count:) needs a non-negative count, got \(count)")
        if count == 0 { return [] }
        if count < 16 {
            return (0..<count).map { _ in Self.round(scalarNormal(), to: dtype) }
        }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            if dtype == .float32 {
                // Uniforms for the whole tensor first, then the transform in place.
                fillUniform(base, count: count)
                var i = 0
                while i + 16 <= count {
                    BoxMuller16.transform(base + i, kernel: kernel)
                    i += 16
                }
            } else {
                // Half types draw and transform one block at a time, so they never draw the
                // uniforms of a partial last block: the stream differs from float32's after it.
                var i = 0
                while i + 16 <= count {
                    fillUniform(base + i, count: 16)
                    BoxMuller16.transform(base + i, kernel: kernel)
                    i += 16
                }
            }
            if count % 16 != 0 {
                // Both paths recompute the last 16 values from 16 fresh uniforms.
                let tail = base + (count - 16)
                fillUniform(tail, count: 16)
                BoxMuller16.transform(tail, kernel: kernel)
            }
            if dtype != .float32 {
                for k in 0..<count { base[k] = Self.round(base[k], to: dtype) }
            }
        }
        return out
    }

    /// `count` uniforms in [0, 1), exactly `torch.rand(count, generator=g)` in float32.
    public mutating func uniform(count: Int) -> [Float] {
        precondition(count >= 0, "uniform(count:) needs a non-negative count, got \(count)")
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { buf in
            if let base = buf.baseAddress { fillUniform(base, count: count) }
        }
        return out
    }

    /// Float uniforms as `uniform_real_distribution<float>(0, 1)`: the low 24 bits of one 32-bit draw,
    /// scaled by 2^-24 (exact in float).
    private mutating func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int) {
        out.withMemoryRebound(to: UInt32.self, capacity: count) { raw in
            engine.fill(UnsafeMutableBufferPointer(start: raw, count: count))
        }
        let scale = Float(1) / Float(1 << 24)
        let raw = UnsafeRawPointer(out)
        for k in 0..<count {
            let bits = raw.load(fromByteOffset: k * 4, as: UInt32.self)
            out[k] = Float(bits & 0x00ff_ffff) * scale
        }
    }

    /// One value of the element-wise path (`at::normal_distribution<double>`): Box-Muller on two
    /// 53-bit uniforms, returning the cosine branch and caching the sine branch.
    private mutating func scalarNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let mask53: UInt64 = (1 << 53) - 1
        let scale = 1.0 / Double(UInt64(1) << 53)
        let u1 = Double(nextUInt64() & mask53) * scale
        let u2 = Double(nextUInt64() & mask53) * scale
        let r = (-2.0 * log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * sin(theta)
        return r * cos(theta)
    }

    private static func round(_ value: Float, to dtype: TorchFloatType) -> Float {
        switch dtype {
        case .float32: return value
        case .float16: return Float(Float16(value))
        case .bfloat16: return roundToBFloat16(value)
        }
    }

    private static func round(_ value: Double, to dtype: TorchFloatType) -> Float {
        // PyTorch casts the double to float first, then (for half types) float to half.
        round(Float(value), to: dtype)
    }

    /// Round-to-nearest-even to bfloat16, as c10::BFloat16's float constructor does (NaN stays NaN).
    static func roundToBFloat16(_ value: Float) -> Float {
        if value.isNaN { return Float(bitPattern: 0x7fc0_0000) }
        let bits = value.bitPattern
        let rounding: UInt32 = 0x7fff &+ ((bits >> 16) & 1)
        return Float(bitPattern: (bits &+ rounding) & 0xffff_0000)
    }
}
