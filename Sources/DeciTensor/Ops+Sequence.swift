// Token-sequence maths for prompt weighting (A1111's emphasis): per-token scaling, a global mean,
// a scalar scale, and concatenation of `[n, t, c]` sequences along the token axis.
import Foundation

extension Ops {
    /// Row `r` of `x` (viewed as `[rows, channels]`) times `multipliers[r]` (one weight per token).
    public static func scaleRows(_ x: Tensor, by multipliers: [Float]) -> Tensor {
        precondition(multipliers.count == x.rows, "scaleRows: \(multipliers.count) multipliers for \(x.rows) rows of \(x.shape)")
        let out = Tensor(shape: x.shape)
        if Fault.skips("scaleRows", x, out) { return out }
        let (src, dst, c) = (x.pointer, out.pointer, x.channels)
        for r in 0..<x.rows {
            let m = multipliers[r]
            for k in 0..<c { dst[r * c + k] = src[r * c + k] * m }
        }
        return out
    }

    /// `x * s` per element.
    public static func scale(_ x: Tensor, by s: Float) -> Tensor {
        let out = Tensor(shape: x.shape)
        if Fault.skips("scale", x, out) { return out }
        let (src, dst) = (x.pointer, out.pointer)
        for i in 0..<x.count { dst[i] = src[i] * s }
        return out
    }

    /// The mean of every element, summed in double precision and rounded once (torch's float32
    /// reduction lands within a few ulps of it). 0 for an empty tensor or while a fault is pending.
    public static func mean(_ x: Tensor) -> Float {
        guard x.count > 0, !Fault.skips("mean", x) else { return 0 }
        var sum = 0.0
        let p = x.pointer
        for i in 0..<x.count { sum += Double(p[i]) }
        return Float(sum / Double(x.count))
    }

    /// Concatenates `[n, t_i, c]` sequences (equal `n` and `c`) along the token axis: `[n, sum t_i, c]`.
    public static func concatSequence(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { preconditionFailure("concatSequence: no tensors") }
        let (n, c) = (first.shape[0], first.channels)
        for p in parts { precondition(p.rank == 3 && p.shape[0] == n && p.shape[2] == c, "concatSequence: \(p.shape) with \(first.shape)") }
        let total = parts.reduce(0) { $0 + $1.shape[1] }
        let out = Tensor(shape: [n, total, c])
        if Fault.skips("concatSequence", out) || parts.contains(where: { Fault.skips("concatSequence", $0) }) { return out }
        for b in 0..<n {
            var offset = b * total * c
            for p in parts {
                let len = p.shape[1] * c
                (out.pointer + offset).update(from: p.pointer + b * len, count: len)
                offset += len
            }
        }
        return out
    }
}
