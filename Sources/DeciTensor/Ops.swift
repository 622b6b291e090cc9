import CDeciKernels

/// Stateless tensor operations. Model code uses only these and the layers in this module.
public enum Ops {
    /// Multi-head scaled-dot-product attention. `q` has `batch * nq` rows, `k`/`v` `batch * nk`
    /// rows, all `heads * headDim` columns (views into fused projections are fine). Returns
    /// `[batch, nq, heads * headDim]`. Scores are formed a tile of queries at a time. `causal`
    /// lets query i see keys 0...i only (self-attention, nq == nk).
    public static func attention(q: MatrixView, k: MatrixView, v: MatrixView, batch: Int, heads: Int,
                                 scale: Float? = nil, causal: Bool = false, precision: Precision) -> Tensor {
        let c = q.cols
        precondition(c % heads == 0 && k.cols == c && v.cols == c, "attention: widths q \(q.cols) k \(k.cols) v \(v.cols), heads \(heads)")
        precondition(q.rows % batch == 0 && k.rows % batch == 0 && v.rows == k.rows, "attention: rows q \(q.rows) k \(k.rows) v \(v.rows) batch \(batch)")
        let nq = q.rows / batch, nk = k.rows / batch, d = c / heads
        precondition(!causal || nq == nk, "causal attention needs as many queries as keys, got \(nq) and \(nk)")
        let out = Tensor(shape: [batch, nq, c])
        if Fault.skips("attention \(nq)x\(nk)", q.base, k.base, v.base, out) { return out }
        let s = scale ?? 1 / Float(d).squareRoot()
        let (rc, msg) = OpProfile.measure("attention \(nq)x\(nk)") {
            withErrorBuffer { err, len in
            dd_attention(Int32(batch), nq, nk, Int32(heads), Int32(d), q.pointer, q.ld, k.pointer, k.ld, v.pointer, v.ld,
                         out.pointer, c, s, causal ? 1 : 0, precision.kernelType, err, len)
            }
        }
        Fault.check(rc, op: "attention \(nq)x\(nk)", msg)
        return out
    }

    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "add: \(a.shape) + \(b.shape)")
        let out = Tensor(shape: a.shape)
        if Fault.skips("add", a, b, out) { return out }
        dd_add(a.pointer, b.pointer, out.pointer, a.count, 0)
        return out
    }

    /// `a += b` in place (same element count).
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "add: \(a.shape) + \(b.shape)")
        if Fault.skips("addInPlace", a, b) { return }
        dd_add(a.pointer, b.pointer, a.pointer, a.count, 0)
    }

    /// Adds a per-channel vector to every row.
    public static func addChannelBias(_ a: Tensor, _ bias: [Float]) -> Tensor {
        precondition(bias.count == a.channels, "bias of \(bias.count) for \(a.shape)")
        let out = Tensor(shape: a.shape)
        if Fault.skips("addChannelBias", a, out) { return out }
        bias.withUnsafeBufferPointer { dd_add(a.pointer, $0.baseAddress, out.pointer, a.count, a.channels) }
        return out
    }

    public static func activation(_ x: Tensor, _ act: Activation) -> Tensor {
        let out = x.copy()
        if Fault.skips("activation", out) { return out }
        dd_activation_inplace(out.pointer, out.count, act.kernel)
        return out
    }

    public static func silu(_ x: Tensor) -> Tensor { activation(x, .silu) }
    public static func gelu(_ x: Tensor) -> Tensor { activation(x, .geluErf) }
    public static func quickGelu(_ x: Tensor) -> Tensor { activation(x, .quickGelu) }

    /// GEGLU on `[..., 2f]`: first half times GELU(second half).
    public static func geglu(_ x: Tensor) -> Tensor {
        precondition(x.channels % 2 == 0, "geglu needs an even last axis, got \(x.shape)")
        let f = x.channels / 2
        let out = Tensor(shape: Array(x.shape.dropLast()) + [f])
        if Fault.skips("geglu", x, out) { return out }
        OpProfile.measure("geglu") { dd_geglu(x.pointer, out.pointer, x.rows, f) }
        return out
    }

    /// Row-wise softmax of `scale * x` over the last axis.
    public static func softmax(_ x: Tensor, scale: Float = 1) -> Tensor {
        let out = Tensor(shape: x.shape)
        if Fault.skips("softmax", x, out) { return out }
        dd_softmax(x.pointer, out.pointer, x.rows, x.channels, scale)
        return out
    }

    /// Nearest-neighbour 2x upsampling of NHWC `[n, h, w, c]`.
    public static func upsampleNearest2x(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "upsample needs NHWC, got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(shape: [n, 2 * h, 2 * w, c])
        if Fault.skips("upsample", x, out) { return out }
        OpProfile.measure("upsample") { dd_upsample_nearest2x(x.pointer, out.pointer, n, h, w, c) }
        return out
    }

    /// Concatenates along the channel (last) axis.
    public static func concatChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rows == b.rows && Array(a.shape.dropLast()) == Array(b.shape.dropLast()), "concat: \(a.shape) with \(b.shape)")
        let out = Tensor(shape: Array(a.shape.dropLast()) + [a.channels + b.channels])
        if Fault.skips("concat", a, b, out) { return out }
        OpProfile.measure("concat") { dd_concat_channels(a.pointer, a.channels, b.pointer, b.channels, out.pointer, a.rows) }
        return out
    }

    /// Rounds through bfloat16 (what a bf16 matmul input sees); for tests and diagnostics.
    public static func roundToBF16(_ x: Tensor) -> Tensor {
        var bits = [UInt16](repeating: 0, count: x.count)
        let out = Tensor(shape: x.shape)
        if Fault.skips("roundToBF16", x, out) { return out }
        bits.withUnsafeMutableBufferPointer { b in
            dd_f32_to_bf16(x.pointer, b.baseAddress, x.count)
            dd_bf16_to_f32(b.baseAddress, out.pointer, x.count)
        }
        return out
    }
}
