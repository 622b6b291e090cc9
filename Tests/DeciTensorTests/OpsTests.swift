import DeciTensor
import Testing
import TestSupport

@Suite("Element-wise, normalisation and attention kernels against PyTorch")
struct OpsTests {
    @Test(arguments: [false, true])
    func groupNorm(silu: Bool) throws {
        let f = try OpFixture("group_norm")
        let x = try f.nhwc("x")
        let gn = GroupNorm(groups: 32, channels: 64, eps: 1e-5, weight: try f.floats("weight"), bias: try f.floats("bias"))
        let y = gn(x, silu: silu, addBias: try f.tensor("pre_bias"))
        let r = compare(y.toNCHW(), try f.floats(silu ? "expected_silu" : "expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }

    @Test func groupNormSmallGroups() throws {
        let f = try OpFixture("group_norm_eps6")
        let gn = GroupNorm(groups: 16, channels: 48, eps: 1e-6, weight: try f.floats("weight"), bias: try f.floats("bias"))
        let r = compare(gn(try f.nhwc("x")).toNCHW(), try f.floats("expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }

    @Test func layerNorm() throws {
        let f = try OpFixture("layer_norm")
        let ln = LayerNorm(channels: 72, eps: 1e-5, weight: try f.floats("weight"), bias: try f.floats("bias"))
        let r = compare(ln(try f.tensor("x")).toArray(), try f.floats("expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }

    @Test func softmax() throws {
        let f = try OpFixture("softmax")
        let r = compare(Ops.softmax(try f.tensor("x"), scale: 0.3).toArray(), try f.floats("expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }

    @Test(arguments: [("gelu", Activation.geluErf), ("gelu_tanh", .geluTanh), ("silu", .silu), ("quick_gelu", .quickGelu)])
    func activation(_ c: (String, Activation)) throws {
        let f = try OpFixture("activations")
        let got = Ops.activation(try f.tensor("x"), c.1).toArray()
        let want = try f.floats(c.0)
        let r = compare(got, want)
        #expect(r.within(relative: Tolerance.f32), "\(c.0): \(r)")
        // Absolute accuracy near zero matters too (small activations are common).
        let worstSmall = zip(got, want).filter { abs($0.1) < 1 }.map { abs($0.0 - $0.1) }.max() ?? 0
        #expect(worstSmall < 1e-6, "\(c.0): max abs error \(worstSmall) for |y| < 1")
    }

    @Test func geglu() throws {
        let f = try OpFixture("geglu")
        let r = compare(Ops.geglu(try f.tensor("x")).toArray(), try f.floats("expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }

    @Test func upsampleAndConcat() throws {
        let u = try OpFixture("upsample")
        #expect(Ops.upsampleNearest2x(try u.nhwc("x")).toNCHW() == (try u.floats("expected")))
        let c = try OpFixture("concat")
        #expect(Ops.concatChannels(try c.nhwc("a"), try c.nhwc("b")).toNCHW() == (try c.floats("expected")))
    }

    @Test func layoutRoundTrip() {
        let data = (0..<(2 * 3 * 4 * 5)).map(Float.init)
        let t = Tensor.fromNCHW(data, n: 2, c: 3, h: 4, w: 5)
        #expect(t.shape == [2, 4, 5, 3])
        #expect(t[flat: 1] == 20)  // n0, h0, w0, c1 = NCHW index 1*20
        #expect(t.toNCHW() == data)
    }

    @Test func bf16Rounding() {
        // Ties to even, and NaN / infinity preserved.
        let x = Tensor(shape: [6], data: [1.00390625, 1.01171875, -2.5, .infinity, -.infinity, 3.0e38])
        let y = Ops.roundToBF16(x).toArray()
        #expect(y[0] == 1.0 && y[1] == 1.015625 && y[2] == -2.5 && y[3] == .infinity && y[4] == -.infinity)
        #expect(y[5] == 3.0040553e38)  // torch: torch.tensor([3e38]).bfloat16()
        #expect(Ops.roundToBF16(Tensor(shape: [1], data: [.nan])).toArray()[0].isNaN)
    }

    static let attentionCases: [(String, Int, Int)] = [
        ("attention_self", 2, 4), ("attention_cross", 2, 8), ("attention_odd", 1, 2), ("attention_causal", 2, 4),
    ]

    @Test(arguments: attentionCases, Precision.allCases)
    func attention(_ c: (String, Int, Int), precision: Precision) throws {
        let (name, batch, heads) = c
        let f = try OpFixture(name)
        let q = try f.tensor("q"), k = try f.tensor("k"), v = try f.tensor("v")
        let key = precision == .f32 ? "expected" : "expected_bf16"
        // Automatic tiling, and forced small query tiles (with a ragged last tile).
        for tile in [0, 16] {
            let y = KernelOverrides.withAttentionTile(rows: tile) {
                Ops.attention(q: q.matrix, k: k.matrix, v: v.matrix, batch: batch, heads: heads,
                              causal: name.contains("causal"), precision: precision)
            }
            let r = compare(y.toArray(), try f.floats(key))
            #expect(r.within(relative: precision == .f32 ? Tolerance.f32 : Tolerance.bf16Attention), "\(name) \(precision) tile \(tile): \(r)")
        }
    }

    /// q, k and v as column slices of one fused [rows, 3C] projection.
    @Test func attentionOnFusedProjection() throws {
        let f = try OpFixture("attention_self")
        let q = try f.tensor("q"), k = try f.tensor("k"), v = try f.tensor("v")
        let c = q.channels
        let fused = Tensor(shape: [q.rows, 3 * c])
        for r in 0..<q.rows {
            for j in 0..<c {
                fused[flat: r * 3 * c + j] = q[flat: r * c + j]
                fused[flat: r * 3 * c + c + j] = k[flat: r * c + j]
                fused[flat: r * 3 * c + 2 * c + j] = v[flat: r * c + j]
            }
        }
        let y = Ops.attention(q: fused.columns(0, c), k: fused.columns(c, c), v: fused.columns(2 * c, c), batch: 2, heads: 4,
                              precision: .f32)
        let r = compare(y.toArray(), try f.floats("expected"))
        #expect(r.within(relative: Tolerance.f32), "\(r)")
    }
}
