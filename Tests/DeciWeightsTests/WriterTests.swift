import DeciWeights
import Foundation
import Testing

/// The writer reproduces Python safetensors' files byte for byte and writes atomically.
@Suite struct WriterTests {
    private func fileBytes(_ path: String) throws -> [UInt8] { try Array(Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Rebuilds `path` from its parsed tensors (raw bytes) and metadata with the Swift writer.
    private func rewrite(_ path: String) throws -> [UInt8] {
        let file = try SafeTensorsFile(path: path)
        var w = SafeTensorsWriter(metadata: file.metadata)
        for t in file.tensors.reversed() {  // insertion order must not matter
            try w.add(t)
        }
        return w.serialized()
    }

    @Test(arguments: ["layout.safetensors", "conversions.safetensors", "writer_reference.safetensors",
                      "sharded/model-00001-of-00002.safetensors", "sharded/model-00002-of-00002.safetensors",
                      "tiny_vae_fp16/diffusion_pytorch_model.fp16-00001-of-00003.safetensors"])
    func reproducesPythonFilesByteForByte(_ name: String) throws {
        let path = fixture(name)
        let want = try fileBytes(path)
        let got = try rewrite(path)
        #expect(got.count == want.count)
        if got != want {
            let i = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, want.count)
            let context = { (b: [UInt8]) in String(decoding: b[max(0, i - 40)..<min(b.count, i + 40)], as: UTF8.self) }
            Issue.record("first difference at byte \(i):\n got: \(context(got))\nwant: \(context(want))")
        }
    }

    /// The same tensors as tools/make_weights_fixtures.py `writer_reference()`, built from literals.
    @Test func literalTensorsMatchPythonReference() throws {
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        try w.add("zz.i32", int64s: [1, 2, 3], shape: [3], as: .I32)
        try w.add("unicode.é中😀", int64s: [7, -9], shape: [1, 2])
        try w.add("ctl\n\t\u{01}\u{1f}\u{7f}", floats: [1, -1.5, 3.140625], shape: [3], as: .BF16)
        try w.add("quote\"back\\slash/solidus", floats: [1, 0.333251953125, 65504, -6.103515625e-05], shape: [4], as: .F16)
        try w.add("alpha.weight", floats: [1, -2, 0.5, 3.25, 1e-8, -0.0], shape: [2, 3])
        let want = try fileBytes(fixture("writer_reference.safetensors"))
        #expect(w.serialized() == want)
        #expect(w.tensorNames.first == "zz.i32")
    }

    @Test func atomicWriteAndRoundTrip() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("dump.safetensors")
        var w1 = SafeTensorsWriter(metadata: ["z": "last", "a": "first", "quote": "\"hi\"\n"])
        try w1.add("x", floats: [1, 2, 3], shape: [3])
        try w1.write(to: path)
        #expect(dir.contents() == ["dump.safetensors"])  // no temporary file left behind
        #expect(try fileBytes(path) == w1.serialized())
        let old = try SafeTensorsFile(path: path)
        #expect(old.metadata == ["z": "last", "a": "first", "quote": "\"hi\"\n"])
        let header = String(decoding: try fileBytes(path)[8..<(8 + old.headerByteCount)], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"a":"first","quote":"\"hi\"\n","z":"last"},"x":"#))

        // Replacing the file keeps an open reader on the old contents (rename, not overwrite).
        var w2 = SafeTensorsWriter()
        try w2.add("x", floats: [9, 8, 7], shape: [3], as: .BF16)
        try w2.add("y", int64s: [], shape: [0])
        try w2.write(to: path)
        #expect(try old.tensor("x").floats() == [1, 2, 3])
        let new = try SafeTensorsFile(path: path)
        #expect(new.metadata == nil)
        #expect(try new.tensor("x").floats() == [9, 8, 7])
        #expect(try new.tensor("x").dtype == .BF16)
        #expect(try new.tensor("y").shape == [0])
        #expect(dir.contents() == ["dump.safetensors"])
    }

    @Test func emptyFile() throws {
        let w = SafeTensorsWriter()
        #expect(w.serialized() == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let dir = TempDir()
        defer { dir.remove() }
        try w.write(to: dir.file("e.safetensors"))
        #expect(try SafeTensorsFile(path: dir.file("e.safetensors")).keys.isEmpty)
    }

    @Test func invalidInput() throws {
        var w = SafeTensorsWriter()
        try w.add("a", floats: [1], shape: [1])
        expectWeightsError(.invalidWriterInput, key: "a", contains: ["twice"]) { try w.add("a", floats: [1], shape: [1]) }
        expectWeightsError(.invalidWriterInput, key: "b", contains: ["8 bytes given", "needs 12"]) {
            try w.add("b", dtype: .F32, shape: [3], bytes: [UInt8](repeating: 0, count: 8))
        }
        expectWeightsError(.invalidWriterInput, key: "__metadata__") { try w.add("__metadata__", floats: [], shape: [0]) }
        expectWeightsError(.invalidWriterInput, key: "c", contains: ["negative"]) { try w.add("c", floats: [], shape: [-1]) }
        expectWeightsError(.invalidWriterInput, key: "d", contains: ["I32"]) { try w.add("d", int64s: [1 << 40], shape: [1], as: .I32) }
        expectWeightsError(.invalidWriterInput, key: "e", contains: ["I64"]) { try w.add("e", floats: [1], shape: [1], as: .I64) }
        let nowhere = "/nonexistent-deciweights-dir/x.safetensors"
        expectWeightsError(.io, file: nowhere, contains: ["temporary file"]) { try w.write(to: nowhere) }
    }
}
