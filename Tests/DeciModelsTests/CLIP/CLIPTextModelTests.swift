import DeciModels
import DeciTensor
import DeciWeights
import Foundation
import Testing
import TestSupport

// References: tools/make_text_encoder_fixtures.py (transformers' CLIPTextModel on the same weights).

/// Stated tolerances (max|diff| / max|reference|) through the whole text encoder.
private enum CLIPTolerance {
    /// float32 against transformers in float32.
    static let f32 = 1e-4
    /// bf16 matmul/attention inputs against transformers in float32. Measured on the tiny
    /// fixtures (deliberately peaky attention): 1.8e-2 (quick_gelu) and 2.6e-2 (gelu), the same
    /// as torch's own bf16 autocast against its float32 (2.2e-2, 2.5e-2).
    static let bf16 = 4e-2
}

/// One fixture folder under Fixtures/models/text_encoder/ and its reference outputs.
private struct CLIPFixture {
    let folder: String
    let reference: SafeTensorsFile

    init(_ name: String, reference file: String = "reference.safetensors") throws {
        folder = FixturePaths.url("models/text_encoder/\(name)").path
        reference = try SafeTensorsFile(path: folder + "/" + file)
    }

    /// The fixture's token ids, `[batch][tokens]`.
    func ids() throws -> [[Int32]] {
        let t = try reference.tensor("input_ids")
        let flat = try t.int64s().map { Int32($0) }
        return stride(from: 0, to: flat.count, by: t.shape[1]).map { Array(flat[$0..<$0 + t.shape[1]]) }
    }

    func floats(_ key: String) throws -> [Float] { try reference.tensor(key).floats() }
    func shape(_ key: String) throws -> [Int] { try reference.tensor(key).shape }
    func config() throws -> CLIPTextConfig { try CLIPTextConfig.load(contentsOf: URL(fileURLWithPath: folder + "/config.json")) }
}

/// Runs `body`, which must throw `ModelError`; returns its description (empty and an issue if not).
private func modelErrorText(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(ModelError) -> Void) -> String {
    do {
        try body()
        Issue.record("expected a ModelError, nothing was thrown", sourceLocation: sourceLocation)
        return ""
    } catch {
        return error.description
    }
}

/// The rows `[first, first + count)` of every batch element of a `[batch, tokens, hidden]` array.
private func tokenRange(_ x: [Float], tokens: Int, hidden: Int, first: Int, count: Int, rows: Range<Int>) -> [Float] {
    var out: [Float] = []
    for b in rows {
        let start = (b * tokens + first) * hidden
        out += x[start..<start + count * hidden]
    }
    return out
}

@Suite("CLIP text encoder against transformers")
struct CLIPTextModelTests {
    // MARK: Parity

    @Test(arguments: Precision.allCases)
    func quickGeluFloat32Checkpoint(precision: Precision) throws {
        let f = try CLIPFixture("quick_gelu_f32")
        let model = try CLIPTextModel.load(directory: f.folder, precision: precision)
        #expect(model.config.hiddenAct == "quick_gelu" && model.config.numHiddenLayers == 3)
        let ids = try f.ids()
        let tol = precision == .f32 ? CLIPTolerance.f32 : CLIPTolerance.bf16
        let y = try model(ids)
        #expect(y.shape == [2, 77, 64])
        let r = compare(y.toArray(), try f.floats("last_hidden_state"))
        #expect(r.within(relative: tol), "last_hidden_state \(precision): \(r)")
        print("CLIP tiny quick_gelu \(precision): last_hidden_state rel \(r.relative)")
        for k in 1...3 {
            let s = compare(try model(ids, clipSkip: k).toArray(), try f.floats("clip_skip_\(k)"))
            #expect(s.within(relative: tol), "clip_skip \(k) \(precision): \(s)")
        }
    }

    @Test(arguments: Precision.allCases)
    func geluFloat16Checkpoint(precision: Precision) throws {
        let f = try CLIPFixture("gelu_fp16")
        // The folder holds only model.fp16.safetensors, with keys as transformers 5 writes them
        // (no `text_model.` prefix).
        let model = try CLIPTextModel.load(directory: f.folder, precision: precision, variant: "fp16")
        #expect(model.config.hiddenAct == "gelu")
        let ids = try f.ids()
        let tol = precision == .f32 ? CLIPTolerance.f32 : CLIPTolerance.bf16
        let r = compare(try model(ids).toArray(), try f.floats("last_hidden_state"))
        #expect(r.within(relative: tol), "last_hidden_state \(precision): \(r)")
        print("CLIP tiny gelu fp16 weights \(precision): last_hidden_state rel \(r.relative)")
        for k in 1...2 {
            let s = compare(try model(ids, clipSkip: k).toArray(), try f.floats("clip_skip_\(k)"))
            #expect(s.within(relative: tol), "clip_skip \(k) \(precision): \(s)")
        }
    }

    /// The tanh-approximated GELU (`gelu_new`) on the quick_gelu fixture's weights.
    @Test func geluTanhActivation() throws {
        let f = try CLIPFixture("quick_gelu_f32", reference: "reference_gelu_new.safetensors")
        var config = try f.config()
        config.hiddenAct = "gelu_new"
        let store = try WeightStore.openComponent(f.folder)
        let model = try CLIPTextModel(config: config, weights: store, precision: .f32)
        let ids = try f.ids()
        let r = compare(try model(ids).toArray(), try f.floats("last_hidden_state"))
        #expect(r.within(relative: CLIPTolerance.f32), "gelu_new last_hidden_state: \(r)")
        let s = compare(try model(ids, clipSkip: 1).toArray(), try f.floats("clip_skip_1"))
        #expect(s.within(relative: CLIPTolerance.f32), "gelu_new clip_skip 1: \(s)")
    }

    /// Each batch row is encoded independently, and causal attention makes the first t outputs of a
    /// sequence independent of what follows: encoding one row, or a 20-token prefix, reproduces the
    /// corresponding part of the full batch-2 x 77 reference.
    @Test func rowsAndPrefixesMatchTheFullBatch() throws {
        let f = try CLIPFixture("quick_gelu_f32")
        let model = try CLIPTextModel.load(directory: f.folder, precision: .f32)
        let ids = try f.ids()
        let ref = try f.floats("last_hidden_state")
        let row1 = compare(try model([ids[1]]).toArray(), tokenRange(ref, tokens: 77, hidden: 64, first: 0, count: 77, rows: 1..<2))
        #expect(row1.within(relative: CLIPTolerance.f32), "row 1 alone: \(row1)")
        let prefix = ids.map { Array($0.prefix(20)) }
        let y = try model(prefix)
        #expect(y.shape == [2, 20, 64])
        let p = compare(y.toArray(), tokenRange(ref, tokens: 77, hidden: 64, first: 0, count: 20, rows: 0..<2))
        #expect(p.within(relative: CLIPTolerance.f32), "20-token prefix: \(p)")
    }

    /// Guards the test itself: the clip-skip outputs differ from the last hidden state, so the
    /// comparisons above cannot pass by returning the same tensor.
    @Test func clipSkipOutputsDiffer() throws {
        let f = try CLIPFixture("quick_gelu_f32")
        let last = try f.floats("last_hidden_state")
        for k in 1...3 {
            #expect(!compare(try f.floats("clip_skip_\(k)"), last).within(relative: 0.05), "clip_skip_\(k) vs last")
        }
    }

    // MARK: Config

    @Test func configDefaultsAndParameterCount() throws {
        let defaults = try CLIPTextConfig.decode(Data("{}".utf8))
        #expect(defaults == CLIPTextConfig())
        #expect(defaults.vocabSize == 49408 && defaults.hiddenSize == 512 && defaults.hiddenAct == "quick_gelu"
                && defaults.layerNormEps == 1e-5 && defaults.maxPositionEmbeddings == 77)
        #expect(try CLIPTextConfig.vitL14.parameterCount == 123_060_480)
        let tiny = try CLIPFixture("quick_gelu_f32").config()
        #expect(tiny.vocabSize == 1000 && tiny.hiddenSize == 64 && tiny.intermediateSize == 176 && tiny.numHiddenLayers == 3
                && tiny.numAttentionHeads == 4 && tiny.maxPositionEmbeddings == 77)
        // The tiny checkpoint's parameter count equals the elements of its non-buffer tensors.
        let store = try WeightStore.openComponent(CLIPFixture("quick_gelu_f32").folder)
        let stored = store.keys.filter { !WeightStore.isHarmlessBuffer($0) }.compactMap { store.peek($0)?.elementCount }.reduce(0, +)
        #expect(try tiny.parameterCount == stored)
        for act in ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"] {
            #expect(throws: Never.self) { _ = try CLIPTextConfig.decode(Data("{\"hidden_act\": \"\(act)\"}".utf8)) }
        }
    }

    @Test func configErrorsNameTheKey() {
        let cases: [(String, [String])] = [
            (#"{"hidden_act": "swish"}"#, ["hidden_act", "swish"]),
            (#"{"hidden_size": 100, "num_attention_heads": 8}"#, ["hidden_size 100", "num_attention_heads 8"]),
            (#"{"num_hidden_layers": 0}"#, ["num_hidden_layers", "0"]),
            (#"{"use_attention_mask": true}"#, ["use_attention_mask"]),
            (#"{"hidden_size": "768"}"#, ["hidden_size"]),
            ("[1, 2]", ["my/config.json"]),
        ]
        for (json, fragments) in cases {
            let text = modelErrorText { () throws(ModelError) in _ = try CLIPTextConfig.decode(Data(json.utf8), source: "my/config.json") }
            #expect(text.hasPrefix("config: my/config.json"), "\(json): \(text)")
            for frag in fragments { #expect(text.contains(frag), "\(json): \(text)") }
        }
        let missing = modelErrorText { () throws(ModelError) in _ = try CLIPTextConfig.load(contentsOf: URL(fileURLWithPath: "/nonexistent/config.json")) }
        #expect(missing.contains("/nonexistent/config.json"), "\(missing)")
    }

    // MARK: Weight errors

    private func weightsError(_ config: CLIPTextConfig, fixture: String = "quick_gelu_f32") throws -> WeightsError? {
        let store = try WeightStore.openComponent(CLIPFixture(fixture).folder)
        do {
            _ = try CLIPTextModel(config: config, weights: store, precision: .f32)
            return nil
        } catch {
            if case .weights(let e) = error { return e }
            Issue.record("expected a weights error, got \(error)")
            return nil
        }
    }

    @Test func missingTensorIsNamed() throws {
        var config = try CLIPFixture("quick_gelu_f32").config()
        config.numHiddenLayers = 4
        let e = try #require(try weightsError(config))
        #expect(e.kind == .missingTensor, "\(e)")
        #expect(e.key?.hasPrefix("text_model.encoder.layers.3.") == true, "\(e)")
    }

    @Test func unusedTensorsAreAnError() throws {
        var config = try CLIPFixture("gelu_fp16").config()
        config.numHiddenLayers = 1
        let e = try #require(try weightsError(config, fixture: "gelu_fp16"))
        #expect(e.kind == .unusedTensors, "\(e)")
        #expect(e.message.contains("encoder.layers.1.mlp.fc1.weight"), "\(e)")
    }

    @Test func wrongShapesAreNamed() throws {
        var config = try CLIPFixture("quick_gelu_f32").config()
        config.intermediateSize = 128
        let e = try #require(try weightsError(config))
        #expect(e.kind == .shapeMismatch, "\(e)")
        #expect(e.key == "text_model.encoder.layers.0.mlp.fc1.weight", "\(e)")
        #expect(e.message.contains("[176, 64]") && e.message.contains("[128, 64]"), "\(e)")

        var vocab = try CLIPFixture("quick_gelu_f32").config()
        vocab.vocabSize = 49408
        let v = try #require(try weightsError(vocab))
        #expect(v.kind == .shapeMismatch && v.key == "text_model.embeddings.token_embedding.weight", "\(v)")
    }

    /// A tensor outside the text tower (e.g. a projection head) in the encoder's file is reported,
    /// while the `position_ids` buffer is tolerated.
    @Test func foreignTensorInTheFileIsAnError() throws {
        let f = try CLIPFixture("quick_gelu_f32")
        let source = try SafeTensorsFile(path: f.folder + "/model.safetensors")
        #expect(source.contains("text_model.embeddings.position_ids"))
        var writer = SafeTensorsWriter()
        for t in source.tensors { try writer.add(t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes()) }
        try writer.add("text_projection.weight", floats: [Float](repeating: 0, count: 64 * 32), shape: [32, 64])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try writer.write(to: path)
        let config = try f.config()
        let store = try WeightStore.open(path)
        do {
            _ = try CLIPTextModel(config: config, weights: store, precision: .f32)
            Issue.record("expected an unused-tensor error")
        } catch {
            guard case .weights(let e) = error else { Issue.record("\(error)"); return }
            #expect(e.kind == .unusedTensors && e.message.contains("text_projection.weight"), "\(e)")
            #expect(!e.message.contains("position_ids"), "\(e)")
        }
    }

    // MARK: Input errors

    @Test func badInputsAreRejected() throws {
        let f = try CLIPFixture("gelu_fp16")
        let model = try CLIPTextModel.load(directory: f.folder, precision: .f32)
        let row = [Int32](repeating: 5, count: 77)
        let cases: [([[Int32]], Int, String)] = [
            ([], 0, "no token ids"),
            ([[]], 0, "no token ids"),
            ([row + [5]], 0, "78 tokens exceed max_position_embeddings 77"),
            ([row, Array(row.prefix(76))], 0, "row 1 has 76"),
            ([row, row.enumerated().map { $0.offset == 40 ? 1000 : $0.element }], 0, "row 1, position 40: token id 1000"),
            ([row.enumerated().map { $0.offset == 3 ? -1 : $0.element }], 0, "token id -1"),
            ([row], 3, "clipSkip 3"),
            ([row], -1, "clipSkip -1"),
        ]
        for (ids, skip, fragment) in cases {
            do {
                _ = try model(ids, clipSkip: skip)
                Issue.record("expected an input error for \(fragment)")
            } catch {
                #expect(error.description.contains(fragment), "\(error.description)")
            }
        }
        #expect(throws: Never.self) { _ = try model([row], clipSkip: 2) }
    }

    // MARK: Full size (DECI_FULL=1)

    /// CLIP ViT-L/14 text tower with random weights written by
    /// `tools/make_text_encoder_fixtures.py --full` (to DECI_TEXT_ENCODER_FULL or
    /// ~/.cache/decidiffusion/full/text_encoder). Prints the parity figures and batch 2 x 77 timings.
    @Test(.enabled(if: FixturePaths.fullSizeEnabled))
    func fullSizeViTL14() throws {
        let env = ProcessInfo.processInfo.environment
        let folder = env["DECI_TEXT_ENCODER_FULL"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/decidiffusion/full/text_encoder").path
        let reference = try SafeTensorsFile(path: folder + "/reference.safetensors")
        let idsTensor = try reference.tensor("input_ids")
        let flat = try idsTensor.int64s().map { Int32($0) }
        let ids = stride(from: 0, to: flat.count, by: 77).map { Array(flat[$0..<$0 + 77]) }
        let store = try WeightStore.openComponent(folder)
        let stored = store.keys.filter { !WeightStore.isHarmlessBuffer($0) }.compactMap { store.peek($0)?.elementCount }.reduce(0, +)
        print("CLIP full size: \(stored) parameters stored, config says \(try CLIPTextConfig.vitL14.parameterCount)")
        #expect(stored == 123_060_480)
        for precision in Precision.allCases {
            let loadStart = Date()
            let model = try CLIPTextModel.load(directory: folder, precision: precision)
            let loadTime = Date().timeIntervalSince(loadStart)
            #expect(model.config == CLIPTextConfig.vitL14)
            #expect(try model.parameterCount == 123_060_480)
            let tol = precision == .f32 ? CLIPTolerance.f32 : CLIPTolerance.bf16
            let y = try model(ids)
            let r = compare(y.toArray(), try reference.tensor("last_hidden_state").floats())
            #expect(r.within(relative: tol), "full \(precision) last_hidden_state: \(r)")
            let s = compare(try model(ids, clipSkip: 1).toArray(), try reference.tensor("clip_skip_1").floats())
            #expect(s.within(relative: tol), "full \(precision) clip_skip 1: \(s)")
            var times: [Double] = []
            for _ in 0..<5 {
                let t0 = Date()
                _ = try model(ids)
                times.append(Date().timeIntervalSince(t0))
            }
            times.sort()
            print(String(format: "CLIP full size %@: last_hidden_state rel %.3g (max|diff| %.3g), clip_skip_1 rel %.3g; load %.2f s; "
                         + "batch 2 x 77 forward min %.3f s, median %.3f s (%d threads)",
                         precision.rawValue, r.relative, r.maxAbsDiff, s.relative, loadTime, times[0], times[2], Backend.threads))
        }
    }
}
