// Loads the denoiser fixtures written by tools/make_unet_fixtures.py. Their weights are not stored:
// they are recomputed here from each tensor's name and shape with the same integer generator and
// written to a temporary safetensors file in the fixture's dtype.
import DeciTensor
import DeciWeights
import Foundation
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
