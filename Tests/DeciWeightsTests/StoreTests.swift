import DeciWeights
import Dispatch
import Foundation
import Testing

/// Loading by checkpoint key: shape checks, scopes, renames, unused tensors, shards.
@Suite struct StoreTests {
    /// A small checkpoint shaped like the project's components, written with the Swift writer.
    private func makeStore(_ dir: TempDir, extra: (inout SafeTensorsWriter) throws -> Void = { _ in }) throws -> (WeightStore, String) {
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        try w.add("text_model.embeddings.position_ids", int64s: (0..<77).map(Int64.init), shape: [1, 77])
        try w.add("text_model.encoder.layers.0.self_attn.q_proj.weight", floats: (0..<16).map(Float.init), shape: [4, 4], as: .F16)
        try w.add("text_model.encoder.layers.0.self_attn.q_proj.bias", floats: [1, 2, 3, 4], shape: [4])
        try w.add("text_model.encoder.layers.1.self_attn.q_proj.weight", floats: [Float](repeating: 0.5, count: 16), shape: [4, 4], as: .BF16)
        try w.add("down_blocks.0.modules_list.1.norm1.weight", floats: [1, 1, 1, 1, 1, 1, 1, 1], shape: [8])
        try w.add("down_blocks.0.modules_list.1.norm1.bias", floats: [Float](repeating: 0, count: 8), shape: [8])
        try extra(&w)
        let path = dir.file("model.safetensors")
        try w.write(to: path)
        return (try WeightStore.open(path), path)
    }

    @Test func takeChecksShapesAndRecordsUse() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir)
        #expect(store.name == path && store.files.count == 1 && store.metadata == ["format": "pt"])
        let q = try store.take("text_model.encoder.layers.0.self_attn.q_proj.weight", shape: [4, 4])
        #expect(try q.floats() == (0..<16).map(Float.init))
        #expect(store.consumedKeys() == ["text_model.encoder.layers.0.self_attn.q_proj.weight"])

        let e = expectWeightsError(.shapeMismatch, file: path, key: "text_model.encoder.layers.0.self_attn.q_proj.bias",
                                   contains: ["[4]", "[8]"]) {
            _ = try store.take("text_model.encoder.layers.0.self_attn.q_proj.bias", shape: [8])
        }
        #expect(e?.problem == "checkpoint has F32 [4] but the model expects [8]")
        #expect(!store.consumedKeys().contains("text_model.encoder.layers.0.self_attn.q_proj.bias"))
        // peek does not consume
        #expect(store.peek("down_blocks.0.modules_list.1.norm1.weight")?.shape == [8])
        #expect(store.consumedKeys().count == 1)
    }

    @Test func missingKeysSuggestCloseOnes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir)
        // same suffix under another prefix: the prefix was forgotten
        expectWeightsError(.missingTensor, file: path, key: "encoder.layers.0.self_attn.q_proj.weight",
                           contains: ["similar keys: 'text_model.encoder.layers.0.self_attn.q_proj.weight'"]) {
            _ = try store.tensor("encoder.layers.0.self_attn.q_proj.weight")
        }
        // a typo: edit distance
        expectWeightsError(.missingTensor, file: path, key: "down_blocks.0.modules_list.1.norm1.weigth",
                           contains: ["'down_blocks.0.modules_list.1.norm1.weight'"]) {
            _ = try store.tensor("down_blocks.0.modules_list.1.norm1.weigth")
        }
        // nothing similar: no suggestion list
        let e = expectWeightsError(.missingTensor, file: path, key: "conv_in.weight", contains: ["6 tensors"]) {
            _ = try store.tensor("conv_in.weight")
        }
        #expect(e?.message.contains("similar") == false)
    }

    @Test func scopes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir)
        let layer = store.scoped("text_model.").scoped("encoder.layers.1.")
        #expect(layer.prefix == "text_model.encoder.layers.1.")
        #expect(layer.keys == ["self_attn.q_proj.weight"])
        #expect(layer.contains("self_attn.q_proj.weight") && !layer.contains("self_attn.q_proj.bias"))
        let w = try layer.take("self_attn.q_proj.weight", shape: [4, 4])
        #expect(try w.floats() == [Float](repeating: 0.5, count: 16))
        #expect(try layer.takeIfPresent("self_attn.q_proj.bias", shape: [4]) == nil)
        // errors name the full key and say how many keys the scope has
        expectWeightsError(.missingTensor, file: path, key: "text_model.encoder.layers.1.self_attn.k_proj.weight",
                           contains: ["1 under 'text_model.encoder.layers.1.'"]) {
            _ = try layer.tensor("self_attn.k_proj.weight")
        }
        expectWeightsError(.shapeMismatch, file: path, key: "text_model.encoder.layers.1.self_attn.q_proj.weight",
                           contains: ["[4, 4]", "[4, 8]"]) {
            _ = try layer.take("self_attn.q_proj.weight", shape: [4, 8])
        }
        // consumption is shared with the store, and scope-limited finish sees only its keys
        #expect(store.consumedKeys().contains("text_model.encoder.layers.1.self_attn.q_proj.weight"))
        #expect(try layer.finish().isEmpty)
        let block = store.scoped("down_blocks.0.modules_list.1.")
        expectWeightsError(.unusedTensors, file: path, contains: ["2 of 6", "down_blocks.0.modules_list.1.norm1.bias"]) {
            try block.finish()
        }
        #expect(block.unusedKeys() == ["down_blocks.0.modules_list.1.norm1.bias", "down_blocks.0.modules_list.1.norm1.weight"])
    }

    @Test func finishReportsUnusedAndAllowsHarmlessBuffers() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir)
        for key in store.keys where !key.hasSuffix("position_ids") && !key.contains("layers.1.") {
            _ = try store.tensor(key)
        }
        let e = expectWeightsError(.unusedTensors, file: path, contains: ["1 of 6"]) { try store.finish() }
        #expect(e?.message.contains("text_model.encoder.layers.1.self_attn.q_proj.weight") == true)
        #expect(e?.message.contains("position_ids") == false)
        #expect(store.unusedKeys() == ["text_model.embeddings.position_ids", "text_model.encoder.layers.1.self_attn.q_proj.weight"])
        // marking the skipped part consumed leaves only the harmless buffer, returned as a warning
        store.markConsumed(["text_model.encoder.layers.1.self_attn.q_proj.weight", "not.a.key"])
        #expect(try store.finish() == ["text_model.embeddings.position_ids"])
        // a stricter policy rejects the buffer too
        expectWeightsError(.unusedTensors, file: path, contains: ["position_ids"]) { try store.finish(allowUnused: { _ in false }) }
    }

    @Test func verifyListsEveryProblemAtOnce() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir)
        var expected = [String: [Int]]()
        for k in store.keys { expected[k] = store.peek(k)?.shape }
        try store.verify(expected: expected)
        expected["down_blocks.0.modules_list.1.norm1.weight"] = [16]
        expected["conv_in.weight"] = [8, 4, 3, 3]
        expected["text_model.encoder.layers.1.self_attn.q_proj.weight"] = nil
        expectWeightsError(.shapeMismatch, file: path,
                           contains: ["3 problems", "'conv_in.weight' is missing", "has shape [8], expected [16]",
                                      "'text_model.encoder.layers.1.self_attn.q_proj.weight' is not expected"]) {
            try store.verify(expected: expected)
        }
        #expect(store.consumedKeys().isEmpty)
    }

    @Test func legacyVAEAttentionNames() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, path) = try makeStore(dir) { w in
            for (name, shape) in [("query.weight", [4, 4]), ("query.bias", [4]), ("key.weight", [4, 4]), ("value.weight", [4, 4]),
                                  ("proj_attn.weight", [4, 4]), ("proj_attn.bias", [4]), ("group_norm.weight", [4])] {
                try w.add("vae.mid_block.attentions.0." + name, floats: [Float](repeating: 1, count: shape.reduce(1, *)), shape: shape)
            }
        }
        let attn = store.scoped("vae.", renames: KeyRename.vaeLegacyAttention).scoped("mid_block.attentions.0.")
        #expect(attn.contains("to_q.weight") && attn.contains("group_norm.weight") && !attn.contains("to_q.scale"))
        #expect(try attn.take("to_q.weight", shape: [4, 4]).name == "vae.mid_block.attentions.0.query.weight")
        #expect(try attn.take("to_q.bias", shape: [4]).name == "vae.mid_block.attentions.0.query.bias")
        #expect(try attn.take("to_k.weight", shape: [4, 4]).name == "vae.mid_block.attentions.0.key.weight")
        #expect(try attn.take("to_v.weight", shape: [4, 4]).name == "vae.mid_block.attentions.0.value.weight")
        #expect(try attn.take("to_out.0.weight", shape: [4, 4]).name == "vae.mid_block.attentions.0.proj_attn.weight")
        #expect(try attn.take("to_out.0.bias", shape: [4]).name == "vae.mid_block.attentions.0.proj_attn.bias")
        #expect(try attn.take("group_norm.weight", shape: [4]).name == "vae.mid_block.attentions.0.group_norm.weight")
        #expect(attn.unusedKeys().isEmpty)
        // the shape error names the key asked for and the legacy key found
        expectWeightsError(.shapeMismatch, file: path, key: "vae.mid_block.attentions.0.to_q.weight",
                           contains: ["found as 'vae.mid_block.attentions.0.query.weight'", "[4, 4]", "[2, 2]"]) {
            _ = try attn.take("to_q.weight", shape: [2, 2])
        }
        // a missing key lists the legacy names tried
        expectWeightsError(.missingTensor, file: path, key: "vae.mid_block.attentions.0.to_k.bias",
                           contains: ["also tried 'vae.mid_block.attentions.0.key.bias'"]) {
            _ = try attn.tensor("to_k.bias")
        }
        // without the renames, the legacy checkpoint is not silently accepted
        expectWeightsError(.missingTensor, file: path, key: "vae.mid_block.attentions.0.to_q.weight",
                           contains: ["similar keys"]) {
            _ = try store.scoped("vae.mid_block.attentions.0.").tensor("to_q.weight")
        }
    }

    @Test func keyRenameRules() {
        let seg = KeyRename.segment("to_out.0", legacy: "proj_attn")
        #expect(seg.legacyKey(for: "a.to_out.0.weight") == "a.proj_attn.weight")
        #expect(seg.legacyKey(for: "a.to_out.01.weight") == nil)
        #expect(seg.legacyKey(for: "to_out.0") == "proj_attn")
        #expect(KeyRename.segment("to_q", legacy: "query").legacyKey(for: "x.to_qk.weight") == nil)
        #expect(KeyRename.prefix("model.", legacy: "").legacyKey(for: "model.conv.weight") == "conv.weight")
        #expect(KeyRename.prefix("model.", legacy: "").legacyKey(for: "conv.weight") == nil)
        #expect(KeyRename.suffix(".gamma", legacy: ".weight").legacyKey(for: "ln.gamma") == "ln.weight")
        #expect(KeyRename.suffix(".gamma", legacy: ".weight").legacyKey(for: "ln.beta") == nil)
        // rules combine when one rewrite is not enough
        let dir = TempDir()
        defer { dir.remove() }
        var w = SafeTensorsWriter()
        try? w.add("first_stage_model.mid.attn_1.query.weight", floats: [1], shape: [1])
        try? w.write(to: dir.file("m.safetensors"))
        guard let store = try? WeightStore.open(dir.file("m.safetensors")) else { Issue.record("open failed"); return }
        let scope = store.scoped("", renames: [.prefix("vae.", legacy: "first_stage_model."), .segment("to_q", legacy: "query")])
        #expect((try? scope.tensor("vae.mid.attn_1.to_q.weight"))?.name == "first_stage_model.mid.attn_1.query.weight")
    }

    @Test func concurrentLoadingRecordsEveryKey() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let (store, _) = try makeStore(dir) { w in
            for i in 0..<200 { try w.add("blocks.\(i).weight", floats: [Float(i)], shape: [1]) }
        }
        let failures = Atomicish()
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            do {
                let t = try store.scoped("blocks.\(i).").take("weight", shape: [1])
                if try t.floats() != [Float(i)] { failures.add() }
            } catch { failures.add() }
        }
        #expect(failures.value == 0)
        #expect(store.unusedKeys(prefix: "blocks.").isEmpty)
        #expect(store.consumedKeys().count == 200)
    }

    @Test func filesOfOneStoreMustNotShareKeys() throws {
        let dir = TempDir()
        defer { dir.remove() }
        var a = SafeTensorsWriter()
        try a.add("shared.weight", floats: [1], shape: [1])
        try a.add("only_a", floats: [1], shape: [1])
        var b = SafeTensorsWriter()
        try b.add("shared.weight", floats: [2], shape: [1])
        try a.write(to: dir.file("a.safetensors"))
        try b.write(to: dir.file("b.safetensors"))
        expectWeightsError(.duplicateKey, file: dir.file("b.safetensors"), key: "shared.weight", contains: [dir.file("a.safetensors")]) {
            _ = try WeightStore(paths: [dir.file("a.safetensors"), dir.file("b.safetensors")])
        }
        let one = try WeightStore(paths: [dir.file("a.safetensors")])
        #expect(one.keys == ["only_a", "shared.weight"])
    }
}

/// A counter safe to bump from concurrent test threads.
final class Atomicish: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
