// Loads the denoiser fixtures written by tools/make_unet_fixtures.py. Their weights are not stored:
// they are recomputed here from each tensor's name and shape with the same integer generator and
// written to a temporary safetensors file in the fixture's dtype.
import DeciTensor
import DeciWeights
import Foundation
import Testing
import TestSupport

/// The deterministic weight values of tools/make_unet_fixtures.py (see its docstring).
func fixtureWeightValues(key: String, shape: [Int]) -> [Float] {
    var seed: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in key.utf8 { seed = (seed ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    let n = shape.reduce(1, *)
    let scale: Float = shape.count >= 2 ? 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot() : 0
    let isNormScale = shape.count == 1 && key.hasSuffix("weight")
    var out = [Float](repeating: 0, count: n)
    for i in 0..<n {
        var z = seed &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Float(z >> 40) * 0x1p-23 - 1
        out[i] = shape.count >= 2 ? u * scale : (isNormScale ? 1 + u * 0.25 : u * 0.125)
    }
    return out
}

enum FixtureError: Error, CustomStringConvertible {
    case bad(String)
    var description: String { if case .bad(let m) = self { m } else { "" } }
}

/// One denoiser fixture folder: config, manifest (the reference's state dict) and inputs/outputs.
struct UNetFixture {
    let name: String
    let folder: URL
    let configData: Data
    let dtype: WeightDType
    let tensors: [(key: String, shape: [Int])]
    let io: [String: WeightTensor]
    let ioFile: SafeTensorsFile

    init(_ relative: String) throws {
        name = relative
        folder = FixturePaths.url(relative)
        configData = try Data(contentsOf: folder.appendingPathComponent("config.json"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json"))) as? [String: Any]
        guard let m = manifest, let dt = m["dtype"] as? String, let list = m["tensors"] as? [[Any]] else {
            throw FixtureError.bad("\(relative)/manifest.json is malformed")
        }
        dtype = dt == "F16" ? .F16 : .F32
        tensors = list.compactMap { e in
            guard e.count == 2, let k = e[0] as? String, let s = e[1] as? [Int] else { return nil }
            return (k, s)
        }
        ioFile = try SafeTensorsFile(path: folder.appendingPathComponent("io.safetensors").path)
        io = Dictionary(uniqueKeysWithValues: ioFile.tensors.map { ($0.name, $0) })
    }

    /// Writes the weights (optionally edited) to a fresh temporary file and opens it.
    func weights(edit: (inout [(key: String, shape: [Int])]) -> Void = { _ in }) throws -> WeightStore {
        var list = tensors
        edit(&list)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        for (k, s) in list { try writer.add(k, floats: fixtureWeightValues(key: k, shape: s), shape: s, as: dtype) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deci-unet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("diffusion_pytorch_model.safetensors").path
        try writer.write(to: path)
        let store = try WeightStore.open(path)
        try? FileManager.default.removeItem(at: dir)  // the mapping stays valid after unlinking
        return store
    }

    func floats(_ key: String) throws -> [Float] {
        guard let t = io[key] else { throw FixtureError.bad("\(name)/io.safetensors has no '\(key)'") }
        return try t.floats()
    }

    func shape(_ key: String) -> [Int] { io[key]?.shape ?? [] }

    /// sample as NHWC, timesteps, context.
    func inputs() throws -> (Tensor, [Float], Tensor) {
        let s = shape("sample")
        let sample = Tensor.fromNCHW(try floats("sample"), n: s[0], c: s[1], h: s[2], w: s[3])
        let context = Tensor(shape: shape("encoder_hidden_states"), data: try floats("encoder_hidden_states"))
        return (sample, try floats("timesteps"), context)
    }
}

/// Loads a denoiser's opt-in full-size data written by `make_unet_fixtures.py --full`.
struct FullSizeData {
    let folder: String
    let io: [String: WeightTensor]
    let ioFile: SafeTensorsFile

    init?(_ name: String) {
        let folder = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/decidiffusion/full/\(name)").path
        guard let f = try? SafeTensorsFile(path: folder + "/io.safetensors") else { return nil }
        self.folder = folder
        ioFile = f
        io = Dictionary(uniqueKeysWithValues: f.tensors.map { ($0.name, $0) })
    }

    func inputs() throws -> (Tensor, [Float], Tensor, [Float]) {
        guard let s = io["sample"], let t = io["timesteps"], let c = io["encoder_hidden_states"], let o = io["output"] else {
            throw FixtureError.bad("\(folder)/io.safetensors is incomplete")
        }
        let sh = s.shape
        return (Tensor.fromNCHW(try s.floats(), n: sh[0], c: sh[1], h: sh[2], w: sh[3]), try t.floats(),
                Tensor(shape: c.shape, data: try c.floats()), try o.floats())
    }
}

/// Deterministic pseudo-random tensor for timing runs.
func benchTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let n = shape.reduce(1, *)
    var x = seed | 1
    var data = [Float](repeating: 0, count: n)
    for i in 0..<n {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        data[i] = Float(x >> 40) * 0x1p-23 - 1
    }
    return Tensor(shape: shape, data: data)
}

func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
}

/// Times the individual ops of U-Net-NAS's two heaviest module kinds at their 64x64-latent shapes
/// (batch 2): a transformer at 1280 channels on 16x16 tokens and a resnet at 640 channels on 64x64,
/// plus the 64x64 upsampler. Prints milliseconds and GFLOP/s per op, so kernel work can be aimed.
func opBreakdown(precision: Precision, repeats: Int = 3) {
    func rnd(_ n: Int, _ seed: UInt64, scale: Float = 0.05) -> [Float] { benchTensor([n], seed: seed).toArray().map { $0 * scale } }
    func linear(_ i: Int, _ o: Int, _ s: UInt64, bias: Bool = true) -> Linear {
        try! Linear(inFeatures: i, outFeatures: o, weight: rnd(i * o, s), bias: bias ? rnd(o, s + 1) : nil, precision: precision)
    }
    func conv(_ i: Int, _ o: Int, _ k: Int, _ s: UInt64) -> Conv2d {
        try! Conv2d(inChannels: i, outChannels: o, kernelSize: k, padding: k / 2, weight: rnd(o * i * k * k, s), bias: rnd(o, s + 1), precision: precision)
    }
    var rows: [(String, Double, Double)] = []
    func time(_ label: String, gflop: Double, _ body: () -> Void) {
        body()
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, seconds(body)) }
        rows.append((label, best, gflop))
    }
    // Transformer, 1280 channels, 2 x 256 tokens, 77 context tokens of 768.
    let c = 1280, n = 2, t = 256, ctx = 77
    let x = benchTensor([n, 16, 16, c], seed: 11)
    let seq = x.reshaped([n, t, c])
    let context = benchTensor([n, ctx, 768], seed: 12)
    let gn = GroupNorm(groups: 32, channels: c, eps: 1e-6, weight: [Float](repeating: 1, count: c), bias: [Float](repeating: 0, count: c))
    let ln = LayerNorm(channels: c, eps: 1e-5, weight: [Float](repeating: 1, count: c), bias: [Float](repeating: 0, count: c))
    let rowsT = Double(n * t)
    let mm = { (i: Int, o: Int, r: Double) in 2 * r * Double(i) * Double(o) / 1e9 }
    time("transformer 1280ch 16x16: group norm", gflop: 0) { _ = gn(x) }
    let pin = linear(c, c, 20)
    time("transformer: proj_in / proj_out linear 1280->1280 (x2)", gflop: mm(c, c, rowsT)) { _ = pin(seq) }
    time("transformer: layer norm (x3)", gflop: 0) { _ = ln(seq) }
    let qkv = linear(c, 3 * c, 21, bias: false)
    time("transformer: self q/k/v fused linear 1280->3840", gflop: mm(c, 3 * c, rowsT)) { _ = qkv(seq) }
    let fused = qkv(seq)
    time("transformer: self attention 8 heads 256x256", gflop: 4 * Double(n * t * t * c) / 1e9) {
        _ = Ops.attention(q: fused.columns(0, c), k: fused.columns(c, c), v: fused.columns(2 * c, c), batch: n, heads: 8, precision: precision)
    }
    let out = linear(c, c, 22)
    time("transformer: to_out linear + residual (x2)", gflop: mm(c, c, rowsT)) { _ = out(seq, residual: seq) }
    let q = linear(c, c, 23, bias: false)
    time("transformer: cross q linear", gflop: mm(c, c, rowsT)) { _ = q(seq) }
    let kv = linear(768, 2 * c, 24, bias: false)
    time("transformer: cross k/v linear over 77 tokens (cached across steps)", gflop: mm(768, 2 * c, Double(n * ctx))) { _ = kv(context) }
    let qx = q(seq), kvx = kv(context)
    time("transformer: cross attention 256x77", gflop: 4 * Double(n * t * ctx * c) / 1e9) {
        _ = Ops.attention(q: qx.matrix, k: kvx.columns(0, c), v: kvx.columns(c, c), batch: n, heads: 8, precision: precision)
    }
    let ff1 = linear(c, 8 * c, 25), ff2 = linear(4 * c, c, 26)
    time("transformer: ff net.0.proj 1280->10240", gflop: mm(c, 8 * c, rowsT)) { _ = ff1(seq) }
    let h1 = ff1(seq)
    time("transformer: geglu 10240->5120", gflop: 0) { _ = Ops.geglu(h1) }
    let g = Ops.geglu(h1)
    time("transformer: ff net.2 5120->1280 + residual", gflop: mm(4 * c, c, rowsT)) { _ = ff2(g, residual: seq) }
    // SD-1.5's heaviest attention: 320 channels on 64x64 = 4096 tokens, 8 heads of 40.
    let sdq = benchTensor([n * 4096, 3 * 320], seed: 41)
    time("SD-1.5 transformer 320ch 64x64: self attention 8 heads 4096x4096", gflop: 4 * Double(n * 4096 * 4096 * 320) / 1e9) {
        _ = Ops.attention(q: sdq.columns(0, 320), k: sdq.columns(320, 320), v: sdq.columns(640, 320), batch: n, heads: 8, precision: precision)
    }
    // Resnet, 640 channels at 64x64, and the 64x64 upsampler's conv.
    let r = 640
    let y = benchTensor([n, 64, 64, r], seed: 31)
    let gnr = GroupNorm(groups: 32, channels: r, eps: 1e-5, weight: [Float](repeating: 1, count: r), bias: [Float](repeating: 0, count: r))
    let temb = benchTensor([n, r], seed: 32)
    let conv3 = conv(r, r, 3, 33)
    let convFlop = 2 * Double(n * 64 * 64) * Double(r * r * 9) / 1e9
    time("resnet 640ch 64x64: group norm + silu (x2, one with the time bias)", gflop: 0) { _ = gnr(y, silu: true, addBias: temb) }
    time("resnet 640ch 64x64: conv3x3 640->640 (x2; the upsampler's conv is the same)", gflop: convFlop) { _ = conv3(y) }
    time("resnet 640ch 64x64: conv3x3 640->640 + residual", gflop: convFlop) { _ = conv3(y, residual: y) }
    let small = benchTensor([n, 32, 32, r], seed: 34)
    time("upsample 640ch 32->64: nearest 2x", gflop: 0) { _ = Ops.upsampleNearest2x(small) }
    let cat = benchTensor([n, 64, 64, 320], seed: 35)
    time("concat 640ch + 320ch at 64x64", gflop: 0) { _ = Ops.concatChannels(y, cat) }
    print("op breakdown \(precision.rawValue), \(Backend.threads) threads (best of \(repeats)):")
    for (label, s, gf) in rows {
        print(String(format: "%9.2f ms %7.1f GFLOP/s  ", s * 1e3, gf > 0 ? gf / s : 0) + label)
    }
}

/// The bf16 counterpart: every eligible convolution as Winograd (native bf16: F(2x2, 3x3) with
/// bf16 GEMMs) must keep the bf16 tolerance against the float32 reference and differ from the
/// direct bf16 result. Where native bf16 runs no Winograd (DECI_WINOGRAD_BF16=0) only the
/// tolerance is checked.
func expectBF16WinogradParity(_ label: String, sourceLocation: SourceLocation = #_sourceLocation,
                              _ run: () throws -> Comparison) throws {
    let winograd = try Backend.forcingWinograd(run)
    let direct = try run()
    print("\(label) bf16 Winograd: \(winograd)")
    #expect(winograd.within(relative: bf16Tolerance), "\(label): \(winograd)", sourceLocation: sourceLocation)
    if !Backend.hasNativeBF16 || Backend.runsBF16Winograd {
        #expect(winograd.maxAbsDiff != direct.maxAbsDiff, "\(label): Winograd did not run", sourceLocation: sourceLocation)
    }
}

/// Runs a denoiser fixture's f32 forward pass (`run` returns its comparison with the reference)
/// with every eligible convolution as Winograd, then directly: the Winograd result must meet the
/// f32 tolerance and differ from the direct one, which shows that it ran.
func expectWinogradParity(_ label: String, sourceLocation: SourceLocation = #_sourceLocation,
                          _ run: () throws -> Comparison) throws {
    let winograd = try Backend.forcingWinograd(run)
    let direct = try run()
    print("\(label) f32 Winograd: \(winograd)")
    #expect(winograd.within(relative: f32Tolerance), "\(label): \(winograd)", sourceLocation: sourceLocation)
    #expect(winograd.maxAbsDiff != direct.maxAbsDiff, "\(label): Winograd did not run", sourceLocation: sourceLocation)
}
