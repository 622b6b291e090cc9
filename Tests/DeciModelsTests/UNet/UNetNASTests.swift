import DeciTensor
import DeciWeights
import Foundation
import Testing
import TestSupport

import DeciModels

/// Tolerances (max|diff| / max|ref|) against the f32 PyTorch reference. Measured on the tiny
/// fixtures: f32 1.5e-6 to 2.0e-6; bf16 (matmul/conv inputs and weights rounded to bf16, f32
/// accumulation, through 30-70 layers) 7.4e-3 to 1.3e-2.
let f32Tolerance = 1e-4
let bf16Tolerance = 3e-2

enum NASCases {
    static let names = ["scaled", "kinds", "unmixed", "odd"]
}

private func specConfig(_ file: String) throws -> Data {
    // The spec folder sits beside the repository (shared/spec); fall back to the repo's own copy.
    let repo = FixturePaths.root.deletingLastPathComponent()
    for candidate in [repo.deletingLastPathComponent().appendingPathComponent("shared/spec/\(file)"),
                      URL(fileURLWithPath: "/work/shared/spec/\(file)")] where FileManager.default.fileExists(atPath: candidate.path) {
        return try Data(contentsOf: candidate)
    }
    throw FixtureError.bad("spec file \(file) not found")
}

/// The published flexible_unet config (as in shared/spec/flexible_unet.config.json), embedded so the
/// count test does not depend on files outside the repository.
let publishedNASConfig = """
{"_class_name": "FlexibleUNet2DConditionModel", "_diffusers_version": "0.20.2", "configurations": {
 "sample_size": 64, "cross_attention_dim": 768, "temb_dim": 1280, "resnet_eps": 1e-05, "resnet_act_fn": "silu",
 "num_attention_heads": 8, "mix_block_in_forward": true,
 "down_blocks_in_channels": [320, 320, 640], "down_blocks_out_channels": [320, 640, 1280],
 "down_blocks_num_resnets": [2, 2, 1], "down_blocks_num_attentions": [0, 1, 3], "add_downsample": [true, true, true],
 "add_upsample_mid_block": true, "mid_num_resnets": 4, "mid_num_attentions": 2,
 "prev_output_channels": [1280, 1280, 640], "up_blocks_num_resnets": [2, 3, 3], "up_blocks_num_attentions": [6, 3, 0],
 "add_upsample": [true, true, false]}}
"""

private func runNAS(_ name: String, precision: Precision) throws -> (Comparison, UNetNAS) {
    let fx = try UNetFixture("models/unet_nas/\(name)")
    let config = try UNetNASConfig.decode(fx.configData, source: name)
    let model = try UNetNAS(config: config, weights: try fx.weights().scoped(""), precision: precision)
    let (sample, t, context) = try fx.inputs()
    let out = model(sample, timesteps: t, context: context)
    return (compare(out.toNCHW(), try fx.floats("output")), model)
}

@Suite("U-Net-NAS")
struct UNetNASTests {
    @Test("f32 forward matches the PyTorch reference", arguments: NASCases.names)
    func parityF32(_ name: String) throws {
        let (c, _) = try runNAS(name, precision: .f32)
        print("U-Net-NAS \(name) f32: \(c)")
        #expect(c.within(relative: f32Tolerance), "\(name): \(c)")
    }

    @Test("f32 forward with every eligible conv as Winograd matches the PyTorch reference", arguments: NASCases.names)
    func parityWinograd(_ name: String) throws {
        try expectWinogradParity("U-Net-NAS \(name)") { try runNAS(name, precision: .f32).0 }
    }

    @Test("bf16 forward with every eligible conv as Winograd stays close to the f32 reference", arguments: NASCases.names)
    func bf16Winograd(_ name: String) throws {
        try expectBF16WinogradParity("U-Net-NAS \(name)") { try runNAS(name, precision: .bf16).0 }
    }

    @Test("bf16 forward stays close to the f32 reference", arguments: NASCases.names)
    func parityBF16(_ name: String) throws {
        let (c, _) = try runNAS(name, precision: .bf16)
        print("U-Net-NAS \(name) bf16: \(c)")
        #expect(c.within(relative: bf16Tolerance), "\(name): \(c)")
    }

    @Test("parameter plan equals the reference's state dict", arguments: NASCases.names)
    func planMatchesReference(_ name: String) throws {
        let fx = try UNetFixture("models/unet_nas/\(name)")
        let plan = try UNetNASConfig.decode(fx.configData).parameterPlan()
        let want = Dictionary(uniqueKeysWithValues: fx.tensors.map { ($0.key, $0.shape) })
        #expect(plan.entries.count == fx.tensors.count)
        #expect(plan.shapes == want)
        for (k, s) in want where plan.shapes[k] != s { Issue.record("\(k): plan \(plan.shapes[k] ?? []) reference \(s)") }
    }

    @Test("published config: 814,746,884 parameters, per-block counts as the checkpoint")
    func publishedParameterCount() throws {
        let config = try UNetNASConfig.decode(Data(publishedNASConfig.utf8))
        #expect(try UNetNAS.parameterCount(config) == 814_746_884)
        let plan = try config.parameterPlan()
        func count(_ prefix: String) -> Int {
            plan.entries.filter { $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.shape.reduce(1, *) }
        }
        #expect(count("down_blocks.0.") == 5_432_000)
        #expect(count("down_blocks.1.") == 27_630_080)
        #expect(count("down_blocks.2.") == 143_614_720)
        #expect(count("mid_block.") == 239_961_600)
        #expect(count("up_blocks.0.") == 313_448_960)
        #expect(count("up_blocks.1.") == 71_413_120)
        #expect(count("up_blocks.2.") == 11_171_840)
        // The spec folder's copy, when present, is the same config.
        if let data = try? specConfig("flexible_unet.config.json") {
            #expect(try UNetNAS.parameterCount(UNetNASConfig.decode(data)) == 814_746_884)
        }
    }

    @Test("published layout: module order and per-resnet widths")
    func publishedLayout() throws {
        let plan = try UNetNASConfig.decode(Data(publishedNASConfig.utf8)).parameterPlan()
        #expect(modulesList(plan, "down_blocks.0") == "R320>320 R320>320")
        #expect(modulesList(plan, "down_blocks.1") == "R320>640 A640 R640>640")
        #expect(modulesList(plan, "down_blocks.2") == "R640>1280 A1280 A1280 A1280")
        #expect(modulesList(plan, "mid_block") == "R1280>1280 A1280 R1280>1280 A1280 R1280>1280 R1280>1280 R1280>1280")
        #expect(modulesList(plan, "up_blocks.0") == "R2560>1280 A1280 R1920>1280 A1280 A1280 A1280 A1280 A1280")
        #expect(modulesList(plan, "up_blocks.1") == "R1920>640 A640 R1280>640 A640 R960>640 A640")
        #expect(modulesList(plan, "up_blocks.2") == "R960>320 R640>320 R640>320")
        let s = plan.shapes
        #expect(s["down_blocks.2.downsamplers.0.conv.weight"] == [1280, 1280, 3, 3])
        #expect(s["mid_block.upsamplers.0.conv.weight"] == [1280, 1280, 3, 3])
        #expect(s["up_blocks.1.upsamplers.0.conv.weight"] == [640, 640, 3, 3])
        #expect(s["up_blocks.2.upsamplers.0.conv.weight"] == nil)
        #expect(s["up_blocks.0.modules_list.1.transformer_blocks.0.attn2.to_k.weight"] == [1280, 768])
        #expect(s["up_blocks.0.modules_list.1.proj_in.weight"] == [1280, 1280, 1, 1])
    }

    @Test("mix_block_in_forward false puts every resnet first")
    func unmixedOrder() throws {
        let text = publishedNASConfig.replacingOccurrences(of: "\"mix_block_in_forward\": true", with: "\"mix_block_in_forward\": false")
        let plan = try UNetNASConfig.decode(Data(text.utf8)).parameterPlan()
        #expect(modulesList(plan, "mid_block") == "R1280>1280 R1280>1280 R1280>1280 R1280>1280 R1280>1280 A1280 A1280")
        #expect(modulesList(plan, "down_blocks.1") == "R320>640 R640>640 A640")
        #expect(modulesList(plan, "up_blocks.1") == "R1920>640 R1280>640 R960>640 A640 A640 A640")
        #expect(plan.parameterCount == 814_746_884)
    }

    @Test("latent sizes must be multiples of 2^downsamplers")
    func latentMultiple() throws {
        let (_, odd) = try runNAS("odd", precision: .f32)
        #expect(odd.latentSizeMultiple == 4)
        #expect(throws: ModelError.self) { try odd.checkLatentSize(height: 12, width: 18) }
        try odd.checkLatentSize(height: 12, width: 20)
        let fx = try UNetFixture("models/unet_nas/scaled")
        let scaled = try UNetNAS(config: UNetNASConfig.decode(fx.configData), weights: fx.weights().scoped(""), precision: .f32)
        #expect(scaled.latentSizeMultiple == 8)
        #expect(scaled.inChannels == 4 && scaled.outChannels == 4 && scaled.contextChannels == 32)
        #expect(throws: ModelError.self) { try scaled.checkLatentSize(height: 20, width: 16) }
    }

    @Test("one timestep is repeated over the batch")
    func timestepBroadcast() throws {
        let fx = try UNetFixture("models/unet_nas/unmixed")
        let model = try UNetNAS(config: UNetNASConfig.decode(fx.configData), weights: fx.weights().scoped(""), precision: .f32)
        let (sample, _, context) = try fx.inputs()
        let a = model(sample, timesteps: [500], context: context).toArray()
        let b = model(sample, timesteps: [500, 500], context: context).toArray()
        #expect(a == b)
        let c = model(sample, timesteps: [500, 499], context: context).toArray()
        #expect(a != c)
    }

    @Test("a missing tensor is an error naming its key")
    func missingTensor() throws {
        let fx = try UNetFixture("models/unet_nas/kinds")
        let config = try UNetNASConfig.decode(fx.configData)
        let victim = "mid_block.modules_list.1.transformer_blocks.0.attn2.to_k.weight"
        let store = try fx.weights { $0.removeAll { $0.key == victim } }
        do {
            _ = try UNetNAS(config: config, weights: store.scoped(""), precision: .f32)
            Issue.record("loading succeeded without \(victim)")
        } catch {
            guard case .weights(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .missingTensor)
            #expect(e.key == victim)
        }
    }

    @Test("a mis-shaped tensor is an error naming its key and both shapes")
    func misShapedTensor() throws {
        let fx = try UNetFixture("models/unet_nas/kinds")
        let config = try UNetNASConfig.decode(fx.configData)
        let victim = "up_blocks.1.modules_list.2.conv1.weight"
        let store = try fx.weights { list in
            if let i = list.firstIndex(where: { $0.key == victim }) { list[i].shape[1] += 32 }
        }
        do {
            _ = try UNetNAS(config: config, weights: store.scoped(""), precision: .f32)
            Issue.record("loading succeeded with a mis-shaped \(victim)")
        } catch {
            guard case .weights(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .shapeMismatch)
            #expect(e.key == victim)
            #expect(e.problem.contains("[64, 128, 3, 3]") && e.problem.contains("[64, 96, 3, 3]"), "\(e)")
        }
    }

    @Test("an extra tensor is an error listing it")
    func unusedTensor() throws {
        let fx = try UNetFixture("models/unet_nas/unmixed")
        let config = try UNetNASConfig.decode(fx.configData)
        let store = try fx.weights { $0.append((key: "down_blocks.0.modules_list.9.norm1.weight", shape: [32])) }
        do {
            _ = try UNetNAS(config: config, weights: store.scoped(""), precision: .f32)
            Issue.record("loading succeeded with an extra tensor")
        } catch {
            guard case .weights(let e) = error else { Issue.record("unexpected \(error)"); return }
            #expect(e.kind == .unusedTensors)
            #expect(e.problem.contains("down_blocks.0.modules_list.9.norm1.weight"))
        }
    }

    @Test("inconsistent or unsupported configs are errors naming the key", arguments: [
        ("\"temb_dim\": 1280", "\"temb_dim\": 640", "temb_dim"),
        ("\"resnet_act_fn\": \"silu\"", "\"resnet_act_fn\": \"gelu\"", "resnet_act_fn"),
        ("\"prev_output_channels\": [1280, 1280, 640]", "\"prev_output_channels\": [1280, 640, 640]", "up_blocks.1.modules_list.0"),
        ("\"add_upsample\": [true, true, false]", "\"add_upsample\": [true, false, false]", "resolution"),
        ("\"add_downsample\": [true, true, true]", "\"add_downsample\": [true, true]", "add_downsample"),
        ("\"down_blocks_num_resnets\": [2, 2, 1]", "\"down_blocks_num_resnets\": [2, 2, 0]", "down_blocks.2.modules_list.0"),
        ("\"num_attention_heads\": 8", "\"num_attention_heads\": 7", "num_attention_heads"),
        ("\"cross_attention_dim\": 768,", "", "cross_attention_dim"),
        ("{\"_class_name\"", "{\"class_embed_type\": \"timestep\", \"_class_name\"", "class_embed_type"),
    ])
    func configErrors(_ edit: (String, String, String)) throws {
        let text = publishedNASConfig.replacingOccurrences(of: edit.0, with: edit.1)
        #expect(text != publishedNASConfig)
        do {
            _ = try UNetNASConfig.decode(Data(text.utf8), source: "flexible_unet/config.json")
            Issue.record("accepted a config with \(edit.1)")
        } catch {
            guard case .config(let m) = error else { Issue.record("unexpected \(error)"); return }
            #expect(m.contains(edit.2), "\(m)")
            #expect(m.contains("flexible_unet/config.json"), "\(m)")
        }
    }
}

// MARK: - Opt-in full size (DECI_FULL=1)

@Suite("U-Net-NAS full size", .serialized, .enabled(if: FixturePaths.fullSizeEnabled))
struct UNetNASFullSizeTests {
    @Test("random-weight parity at a 32x32 latent, batch 2, f32 and bf16")
    func parity() throws {
        guard let data = FullSizeData("unet_nas") else {
            Issue.record("run `$(tools/venv.sh) tools/make_unet_fixtures.py --full` first")
            return
        }
        let (sample, t, context, want) = try data.inputs()
        for precision in [Precision.f32, .bf16] {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let model = try UNetNAS.load(directory: data.folder, precision: precision)
            let load = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            #expect(try UNetNAS.parameterCount(model.config) == 814_746_884)
            let out = model(sample, timesteps: t, context: context)
            let c = compare(out.toNCHW(), want)
            print("U-Net-NAS full \(precision) 32x32 batch 2: \(c); load " + String(format: "%.1f s", load))
            #expect(c.within(relative: precision == .f32 ? f32Tolerance : bf16Tolerance), "\(c)")
        }
    }

    @Test("timing: batch 2 at 32x32 and 64x64 (DECI_BENCH_PRECISIONS=f32,bf16), per-module breakdown")
    func timing() throws {
        guard let data = FullSizeData("unet_nas") else {
            Issue.record("run `$(tools/venv.sh) tools/make_unet_fixtures.py --full` first")
            return
        }
        for precision in benchPrecisions() {
            benchmark("U-Net-NAS", try UNetNAS.load(directory: data.folder, precision: precision), contextChannels: 768)
        }
    }

    @Test("op breakdown at U-Net-NAS's dominant shapes")
    func ops() {
        for precision in benchPrecisions() { opBreakdown(precision: precision) }
    }
}

/// Prints the mean of a few forward passes (after a warm-up) at batch 2, 32x32 and 64x64, then the
/// per-module breakdown of one 64x64 pass.
func benchmark(_ label: String, _ model: any Denoiser, contextChannels: Int) {
    let context = benchTensor([2, 77, contextChannels], seed: 3)
    let env = ProcessInfo.processInfo.environment
    let repeats = Int(env["DECI_BENCH_REPEATS"] ?? "") ?? 2
    let precision = (model as? UNetNAS)?.precision ?? (model as? UNet2DConditionModel)?.precision ?? .f32
    for side in [32, 64] {
        let latents = benchTensor([2, side, side, model.inChannels], seed: 5)
        _ = model(latents, timesteps: [999, 999], context: context)  // warm-up: kernel setup, pools
        var times: [Double] = []
        for _ in 0..<repeats { times.append(seconds { _ = model(latents, timesteps: [999, 999], context: context) }) }
        let mean = times.reduce(0, +) / Double(times.count)
        print("\(label) \(precision.rawValue) batch 2 \(side)x\(side): " + String(format: "%.2f s per step (min %.2f, %d runs, %d threads)",
                                                                                    mean, times.min() ?? 0, times.count, Backend.threads))
        if side == 64 {
            let wasEnabled = OpProfile.enabled
            OpProfile.reset()
            OpProfile.enabled = true
            _ = model(latents, timesteps: [999, 999], context: context)
            OpProfile.enabled = wasEnabled
            print("\(label) \(precision.rawValue) 64x64 per-module breakdown:\n\(OpProfile.report(.module))")
        }
    }
}

/// A block's `modules_list` read back from a parameter plan: `R<in>><out>` per resnet (from conv1),
/// `A<c>` per attention (from proj_in).
func modulesList(_ plan: ParameterPlan, _ block: String) -> String {
    let s = plan.shapes
    var parts: [String] = []
    for j in 0... {
        let p = "\(block).modules_list.\(j)."
        if let w = s[p + "conv1.weight"] {
            parts.append("R\(w[1])>\(w[0])")
        } else if let w = s[p + "proj_in.weight"] {
            parts.append("A\(w[0])")
        } else {
            break
        }
    }
    return parts.joined(separator: " ")
}

/// Precisions the timing tests run: `DECI_BENCH_PRECISIONS` (comma-separated), default f32 only
/// (bf16 is emulated at f32 speed on AVX2-only machines).
func benchPrecisions() -> [Precision] {
    let list = ProcessInfo.processInfo.environment["DECI_BENCH_PRECISIONS"] ?? "f32"
    return list.split(separator: ",").compactMap { Precision(rawValue: String($0)) }
}
