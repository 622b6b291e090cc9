import DeciWeights
import Foundation
import Testing

/// Sharded checkpoints (`*.safetensors.index.json`).
@Suite struct ShardTests {
    let index = fixture("sharded/model.safetensors.index.json")

    @Test func readsTheFixture() throws {
        let store = try WeightStore.open(index)
        #expect(store.name == index)
        #expect(store.files.count == 2)
        #expect(store.keys == ["decoder.bias", "decoder.weight", "encoder.bias", "encoder.weight"])
        #expect(store.metadata == ["total_size": "50"])  // 24 + 8 + 12 + 6 bytes; a JSON number, reported as its text
        #expect(try store.take("encoder.weight", shape: [2, 3]).floats() == [0, 1, 2, 3, 4, 5])
        #expect(try store.take("encoder.bias", shape: [2]).floats() == [0.5, -0.5])
        let dw = try store.take("decoder.weight", shape: [3, 2])
        #expect(dw.dtype == .F16)
        #expect(try dw.floats() == [0, 1, 2, 3, 4, 5])
        #expect(dw.file.path.hasSuffix("model-00002-of-00002.safetensors"))
        #expect(try store.take("decoder.bias", shape: [3]).bfloat16Bits() == [0x3F80, 0x4000, 0x4040])
        #expect(try store.finish().isEmpty)
    }

    /// A copy of the fixture folder with `index` replaced by `indexText`.
    private func shardedCopy(_ dir: TempDir, indexText: String, dropShard2: Bool = false) throws -> String {
        for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] where !(dropShard2 && name.hasSuffix("2-of-00002.safetensors")) {
            try FileManager.default.copyItem(atPath: fixture("sharded/" + name), toPath: dir.file(name))
        }
        return dir.write("model.safetensors.index.json", text: indexText)
    }

    private let goodMap = #""decoder.bias":"model-00002-of-00002.safetensors","decoder.weight":"model-00002-of-00002.safetensors","encoder.bias":"model-00001-of-00002.safetensors","encoder.weight":"model-00001-of-00002.safetensors""#

    @Test func missingShardNamesIndexShardAndKey() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let idx = try shardedCopy(dir, indexText: "{\"weight_map\":{\(goodMap)}}", dropShard2: true)
        expectWeightsError(.missingShard, file: idx, key: "decoder.bias",
                           contains: [dir.file("model-00002-of-00002.safetensors"), "does not exist", "2 keys"]) {
            _ = try WeightStore.openSharded(indexPath: idx)
        }
    }

    @Test func keyMappedToWrongShard() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let map = goodMap.replacingOccurrences(of: #""encoder.bias":"model-00001-of-00002.safetensors""#,
                                               with: #""encoder.bias":"model-00002-of-00002.safetensors""#)
        let idx = try shardedCopy(dir, indexText: "{\"weight_map\":{\(map)}}")
        expectWeightsError(.shardLacksKey, file: idx, key: "encoder.bias",
                           contains: [dir.file("model-00002-of-00002.safetensors"), "does not contain it"]) {
            _ = try WeightStore.openSharded(indexPath: idx)
        }
    }

    @Test func shardTensorsOutsideTheIndexAreKeptAndReported() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // the index forgets encoder.bias: it is still loadable, and unused unless asked for
        let map = goodMap.replacingOccurrences(of: #""encoder.bias":"model-00001-of-00002.safetensors","#, with: "")
        let idx = try shardedCopy(dir, indexText: "{\"metadata\":{\"format\":\"pt\"},\"weight_map\":{\(map)}}")
        let store = try WeightStore.openSharded(indexPath: idx)
        #expect(store.keys.count == 4 && store.metadata == ["format": "pt"])
        for k in ["decoder.bias", "decoder.weight", "encoder.weight"] { _ = try store.tensor(k) }
        expectWeightsError(.unusedTensors, file: idx, contains: ["encoder.bias"]) { try store.finish() }
    }

    @Test func malformedIndexes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let cases: [(String, String)] = [
            ("{\"weight_map\":", "not valid JSON"),
            ("[]", "not an object"),
            ("{\"metadata\":{}}", "no 'weight_map'"),
            ("{\"weight_map\":{\"a\":3}}", "not a file name"),
            ("{\"weight_map\":{\"a\":\"../escape.safetensors\"}}", "not a file inside"),
            ("{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "not a file inside"),
            ("{\"metadata\":3,\"weight_map\":{}}", "'metadata'"),
        ]
        for (i, (text, fragment)) in cases.enumerated() {
            let idx = dir.write("bad\(i).safetensors.index.json", text: text)
            expectWeightsError(.invalidIndex, file: idx, contains: [fragment]) { _ = try WeightStore.openSharded(indexPath: idx) }
        }
        let absent = dir.file("absent.safetensors.index.json")
        expectWeightsError(.io, file: absent) { _ = try WeightStore.openSharded(indexPath: absent) }
    }

    @Test func aShardThatIsItselfBrokenIsReportedWithItsPath() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let idx = try shardedCopy(dir, indexText: "{\"weight_map\":{\(goodMap)}}")
        let shard = dir.file("model-00002-of-00002.safetensors")
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: shard)))
        bytes.removeLast(3)
        _ = dir.write("model-00002-of-00002.safetensors", bytes)
        expectWeightsError(.truncated, file: shard) { _ = try WeightStore.openSharded(indexPath: idx) }
    }
}
