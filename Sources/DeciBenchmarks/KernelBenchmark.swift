import DeciTensor
import Foundation

/// Times the kernels the models spend their time in, on the shapes that dominate a 512 px step.
public enum KernelBenchmark {
    public struct Result: Sendable, Codable {
        public var name: String
        public var precision: String
        public var seconds: Double
        /// GFLOP/s for matmul-like ops, GB/s for memory-bound ones.
        public var rate: Double
        public var unit: String
    }

    /// Runs each case `repeats` times after a warm-up and keeps the best time.
    public static func run(precisions: [Precision] = Precision.allCases, repeats: Int = 3,
                           progress: (Result) -> Void = { _ in }) throws -> [Result] {
        var results: [Result] = []
        func record(_ name: String, _ p: Precision, work: Double, unit: String, _ body: () -> Void) {
            body()  // warm-up: primitive creation, weight packing, page faults
            var best = Double.infinity
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let r = Result(name: name, precision: p.rawValue, seconds: best, rate: work / best / 1e9, unit: unit)
            results.append(r)
            progress(r)
        }
        for p in precisions {
            // UNet shapes (batch 2: classifier-free guidance), then the VAE decoder's. Rates count the
            // direct convolution's multiply-adds, so a Winograd run shows as a higher rate.
            for (batch, cin, hw) in [(2, 320, 64), (2, 640, 32), (2, 1280, 16), (1, 512, 128), (1, 256, 256), (1, 128, 512)] {
                let x = random([batch, hw, hw, cin])
                let conv = try Conv2d(inChannels: cin, outChannels: cin, kernelSize: 3, padding: 1,
                                      weight: randomArray(cin * cin * 9, scale: 0.02), bias: randomArray(cin, scale: 0.1), precision: p)
                let flops = 2.0 * Double(batch * hw * hw) * Double(cin * cin * 9)
                record("conv3x3 \(cin)->\(cin) \(batch)x\(hw)x\(hw)", p, work: flops, unit: "GFLOP/s") { _ = conv(x) }
            }
            do {
                let (tokens, c, heads) = (4096, 640, 8)
                let q = random([2, tokens, c]), k = random([2, tokens, c]), v = random([2, tokens, c])
                let flops = 2.0 * 2 * 2 * Double(tokens * tokens) * Double(c)
                record("attention 2x\(tokens) tokens, \(heads) heads, \(c) ch", p, work: flops, unit: "GFLOP/s") {
                    _ = Ops.attention(q: q.matrix, k: k.matrix, v: v.matrix, batch: 2, heads: heads, precision: p)
                }
            }
            do {
                let (m, fin, fout) = (4096, 768, 3072)
                let x = random([m, fin])
                let lin = try Linear(inFeatures: fin, outFeatures: fout, weight: randomArray(fin * fout, scale: 0.02),
                                     bias: randomArray(fout, scale: 0.1), precision: p)
                record("linear \(m)x\(fin) -> \(fout)", p, work: 2.0 * Double(m * fin * fout), unit: "GFLOP/s") { _ = lin(x) }
            }
        }
        do {
            let x = random([2, 64, 64, 320])
            let gn = GroupNorm(groups: 32, channels: 320, eps: 1e-5, weight: randomArray(320, scale: 1), bias: randomArray(320, scale: 1))
            // Two reads and one write of the activation.
            let bytes = 3.0 * Double(x.count * 4)
            record("groupnorm+silu 2x64x64x320", .f32, work: bytes, unit: "GB/s") { _ = gn(x, silu: true) }
        }
        return results
    }

    static func randomArray(_ n: Int, scale: Float) -> [Float] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in Float.random(in: -scale...scale, using: &g) }
    }

    static func random(_ shape: [Int]) -> Tensor { Tensor(shape: shape, data: randomArray(shape.reduce(1, *), scale: 1)) }
}
