import DeciWeights
import Foundation
import Testing

/// Finding a component folder's weights the way diffusers / transformers name them.
@Suite struct ComponentTests {
    let tinyVAE = fixture("tiny_vae_fp16")

    /// The keys of the fixture's index, read independently with Foundation's JSON parser.
    private func indexKeys() throws -> [String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: tinyVAE + "/diffusion_pytorch_model.safetensors.index.fp16.json"))
        let top = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let map = try #require(top["weight_map"] as? [String: String])
        #expect(map.count > 50)
        return map.keys.sorted()
    }

    @Test func diffusersShardedVariantFixture() throws {
        let found = try ComponentWeights.locate(in: tinyVAE, variant: "fp16")
        #expect(found.source == .sharded(index: tinyVAE + "/diffusion_pytorch_model.safetensors.index.fp16.json"))
        #expect(found.variant == "fp16" && found.notes.isEmpty)
        let store = try found.open()
        #expect(store.files.count == 3)
        #expect(store.keys == (try indexKeys()))
        #expect(store.keys.allSatisfy { store.peek($0)?.dtype == .F16 })
        #expect(try store.take("encoder.conv_in.weight", shape: [8, 3, 3, 3]).floats().count == 216)
        #expect(try store.take("decoder.mid_block.attentions.0.to_q.weight", shape: [8, 8]).dtype == .F16)
    }

    @Test func fallsBackToWhateverVariantExists() throws {
        let plainAsked = try ComponentWeights.locate(in: tinyVAE)
        #expect(plainAsked.variant == "fp16")
        #expect(plainAsked.notes == ["no plain weights in \(tinyVAE); using variant 'fp16'"])
        let otherAsked = try ComponentWeights.locate(in: tinyVAE, variant: "ema")
        #expect(otherAsked.variant == "fp16")
        #expect(otherAsked.notes.first?.contains("variant 'ema' not found") == true)
        #expect(try WeightStore.openComponent(tinyVAE).keys == indexKeys())
    }

    private func tensorFile(_ dir: TempDir, _ name: String, value: Float) throws {
        var w = SafeTensorsWriter()
        try w.add("w", floats: [value], shape: [1])
        try w.write(to: dir.file(name))
    }

    @Test func preferenceOrder() throws {
        let dir = TempDir()
        defer { dir.remove() }
        try tensorFile(dir, "diffusion_pytorch_model.safetensors", value: 1)
        try tensorFile(dir, "diffusion_pytorch_model.fp16.safetensors", value: 2)
        try tensorFile(dir, "model.safetensors", value: 3)
        func value(_ variant: String?) throws -> Float {
            try WeightStore.openComponent(dir.path, variant: variant).tensor("w").floats()[0]
        }
        #expect(try value(nil) == 1)     // plain diffusers name first
        #expect(try value("fp16") == 2)  // the requested variant
        let noBF16 = try ComponentWeights.locate(in: dir.path, variant: "bf16")
        #expect(noBF16.source == .single(dir.file("diffusion_pytorch_model.safetensors")) && noBF16.variant == nil)
        #expect(noBF16.notes == ["variant 'bf16' not found in \(dir.path); using the plain weights"])
        try FileManager.default.removeItem(atPath: dir.file("diffusion_pytorch_model.safetensors"))
        #expect(try value(nil) == 3)     // transformers' name when the diffusers one is absent
    }

    @Test func transformersNamesAndSingleBeforeIndex() throws {
        let dir = TempDir()
        defer { dir.remove() }
        try tensorFile(dir, "model.fp16.safetensors", value: 5)
        _ = dir.write("model.safetensors.index.fp16.json", text: "{\"weight_map\":{\"w\":\"model.fp16.safetensors\"}}")
        let found = try ComponentWeights.locate(in: dir.path, variant: "fp16")
        #expect(found.source == .single(dir.file("model.fp16.safetensors")))
        try FileManager.default.removeItem(atPath: dir.file("model.fp16.safetensors"))
        try tensorFile(dir, "model-00001-of-00001.safetensors", value: 6)
        _ = dir.write("model.safetensors.index.fp16.json", text: "{\"weight_map\":{\"w\":\"model-00001-of-00001.safetensors\"}}")
        let sharded = try ComponentWeights.locate(in: dir.path, variant: "fp16")
        #expect(sharded.source == .sharded(index: dir.file("model.safetensors.index.fp16.json")))
        #expect(try sharded.open().tensor("w").floats() == [6])
    }

    @Test func nothingUsable() throws {
        let dir = TempDir()
        defer { dir.remove() }
        expectWeightsError(.noWeightsFound, file: dir.path, contains: ["the folder is empty"]) {
            _ = try ComponentWeights.locate(in: dir.path)
        }
        _ = dir.write("config.json", text: "{}")
        _ = dir.write("diffusion_pytorch_model.bin", [0x80, 0x02])
        // a lone shard of a variant is not a variant of its own
        try tensorFile(dir, "diffusion_pytorch_model.fp16-00001-of-00002.safetensors", value: 1)
        expectWeightsError(.noWeightsFound, file: dir.path,
                           contains: ["config.json, diffusion_pytorch_model.bin, diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                                      "pickle", "not supported yet"]) {
            _ = try ComponentWeights.locate(in: dir.path, variant: "fp16")
        }
        let missing = dir.file("no_such_component")
        expectWeightsError(.noWeightsFound, file: missing, contains: ["does not exist"]) {
            _ = try WeightStore.openComponent(missing)
        }
    }
}
