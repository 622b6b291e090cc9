// Matches PyTorch's `at::mt19937` (aten/src/ATen/core/MT19937RNGEngine.h), which is the standard
// 32-bit Mersenne Twister seeded with the low 32 bits of the seed.

/// The 32-bit Mersenne Twister (MT19937) as PyTorch's CPU generator runs it.
///
/// PyTorch keeps the full 64-bit seed for `initial_seed()` but only its low 32 bits reach the
/// state, so seeds that agree in their low 32 bits give identical streams.
public struct MT19937: Sendable {
    static let n = 624
    static let m = 397
    static let matrixA: UInt32 = 0x9908_b0df
    static let upperMask: UInt32 = 0x8000_0000
    static let lowerMask: UInt32 = 0x7fff_ffff

    private var state: [UInt32]
    /// Index of the next state word to temper; `n` means the state must be regenerated first.
    private var index: Int

    /// The seed as given (all 64 bits), as `torch.Generator.initial_seed()` reports it.
    public let seed: UInt64

    /// Seeds the engine as `torch.Generator("cpu").manual_seed(seed)` does.
    public init(seed: UInt64) {
        self.seed = seed
        var s = [UInt32](repeating: 0, count: Self.n)
        s[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.n {
            let prev = s[j - 1]
            s[j] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(j)
        }
        state = s
        index = Self.n
    }

    /// The next 32-bit output.
    @inline(__always)
    public mutating func next() -> UInt32 {
        if index >= Self.n { regenerate() }
        let y = state[index]
        index += 1
        return Self.temper(y)
    }

    /// Fills `out` with consecutive outputs; the same values as calling `next()` `out.count` times,
    /// without per-call bounds checks.
    public mutating func fill(_ out: UnsafeMutableBufferPointer<UInt32>) {
        var written = 0
        let total = out.count
        while written < total {
            if index >= Self.n { regenerate() }
            let take = min(Self.n - index, total - written)
            state.withUnsafeBufferPointer { st in
                for k in 0..<take {
                    out[written + k] = Self.temper(st[index + k])
                }
            }
            index += take
            written += take
        }
    }

    @inline(__always)
    static func temper(_ value: UInt32) -> UInt32 {
        var y = value
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    private mutating func regenerate() {
        state.withUnsafeMutableBufferPointer { s in
            @inline(__always) func twist(_ u: UInt32, _ v: UInt32) -> UInt32 {
                let mixed = (u & Self.upperMask) | (v & Self.lowerMask)
                return (mixed >> 1) ^ ((v & 1) != 0 ? Self.matrixA : 0)
            }
            let n = Self.n, m = Self.m
            for k in 0..<(n - m) {
                s[k] = s[k + m] ^ twist(s[k], s[k + 1])
            }
            for k in (n - m)..<(n - 1) {
                s[k] = s[k + m - n] ^ twist(s[k], s[k + 1])
            }
            s[n - 1] = s[m - 1] ^ twist(s[n - 1], s[0])
        }
        index = 0
    }
}
