import DeciTensor
import Testing
import TestSupport

@Suite("Conv2d and Linear against PyTorch")
struct LayerTests {
    /// (fixture, stride, padding, extra bottom/right padding)
    static let convCases: [(String, Int, Int, Int)] = [
        ("conv3x3", 1, 1, 0), ("conv1x1", 1, 0, 0), ("conv3x3_s2", 2, 1, 0), ("conv3x3_nobias_silu_res", 1, 1, 0),
        ("conv3x3_rgb", 1, 1, 0), ("conv3x3_s2_pad0101", 2, 0, 1),
    ]

    @Test(arguments: convCases, Precision.allCases)
    func conv(_ c: (String, Int, Int, Int), precision: Precision) throws {
        let (name, stride, pad, extra) = c
        let f = try OpFixture(name)
        let ws = try f.shape("weight")
        let conv = try Conv2d(inChannels: ws[1], outChannels: ws[0], kernelSize: ws[2], stride: stride, padding: pad,
                              extraBottomRight: extra, weight: try f.floats("weight"), bias: f.has("bias") ? try f.floats("bias") : nil, precision: precision)
        let residual = f.has("residual") ? try f.nhwc("residual") : nil
        let act: Activation = name.contains("silu") ? .silu : .none
        let y = conv(try f.nhwc("x"), activation: act, residual: residual)
        let got = y.toNCHW()
        if precision == .f32 {
            let r = compare(got, try f.floats("expected"))
            #expect(r.within(relative: Tolerance.f32), "\(name) f32: \(r)")
        } else {
            let r = compare(got, try f.floats("expected_bf16"))
            #expect(r.within(relative: Tolerance.bf16VsRounded), "\(name) bf16 vs rounded-input reference: \(r)")
            let r2 = compare(got, try f.floats("expected"))
            #expect(r2.within(relative: Tolerance.bf16VsF32), "\(name) bf16 vs f32: \(r2)")
        }
    }

    @Test(arguments: ["linear", "linear_gelu_res"], Precision.allCases)
    func linear(_ name: String, precision: Precision) throws {
        let f = try OpFixture(name)
        let ws = try f.shape("weight")
        let lin = try Linear(inFeatures: ws[1], outFeatures: ws[0], weight: try f.floats("weight"), bias: try f.floats("bias"),
                             precision: precision)
        let residual = f.has("residual") ? try f.tensor("residual") : nil
        let y = lin(try f.tensor("x"), activation: name.contains("gelu") ? .geluErf : .none, residual: residual)
        let key = precision == .f32 ? "expected" : "expected_bf16"
        let r = compare(y.toArray(), try f.floats(key))
        #expect(r.within(relative: precision == .f32 ? Tolerance.f32 : Tolerance.bf16VsRounded), "\(name) \(precision): \(r)")
    }

    /// A linear layer reading a column slice of a wider tensor (a fused projection's part).
    @Test func linearOnStridedColumns() throws {
        let f = try OpFixture("linear")
        let ws = try f.shape("weight")
        let x = try f.tensor("x")
        let wide = Tensor(shape: [x.rows, x.channels + 7])
        for r in 0..<x.rows {
            for c in 0..<wide.channels { wide[flat: r * wide.channels + c] = c >= 3 && c < 3 + x.channels ? x[flat: r * x.channels + c - 3] : .nan }
        }
        for precision in Precision.allCases {
            let lin = try Linear(inFeatures: ws[1], outFeatures: ws[0], weight: try f.floats("weight"), bias: try f.floats("bias"),
                                 precision: precision)
            let y = lin(wide.columns(3, x.channels), shape: [x.rows, ws[0]])
            let r = compare(y.toArray(), try f.floats(precision == .f32 ? "expected" : "expected_bf16"))
            #expect(r.within(relative: precision == .f32 ? Tolerance.f32 : Tolerance.bf16VsRounded), "strided \(precision): \(r)")
        }
    }

    @Test func convRejectsWrongWeightCount() {
        #expect(throws: KernelError.self) {
            _ = try Conv2d(inChannels: 4, outChannels: 8, kernelSize: 3, weight: [Float](repeating: 0, count: 10), bias: nil, precision: .f32)
        }
    }
}
