import DeciWeights
import Testing

/// A recording store is how models list their checkpoint without one: it must keep every declared
/// key and shape in order, hold no tensors, and let a whole model build finish.
@Suite struct RecordingStoreTests {
    @Test func recordsDeclaredShapesInOrderUnderScopes() throws {
        let store = WeightStore.recording()
        #expect(store.isRecording && store.keys.isEmpty && store.files.isEmpty)
        let block = store.scoped("down_blocks.0.")
        #expect(block.isRecording)
        try block.expect("conv.weight", shape: [8, 4, 3, 3])
        try block.scoped("norm.").expect("weight", shape: [8])
        try store.scoped("").expect("conv_out.bias", shape: [4])
        #expect(store.recordedShapes().map(\.key) == ["down_blocks.0.conv.weight", "down_blocks.0.norm.weight", "conv_out.bias"])
        #expect(store.recordedShapes().map(\.shape) == [[8, 4, 3, 3], [8], [4]])
        #expect(!block.contains("conv.weight"))
        #expect(try store.finish().isEmpty)
    }

    @Test func holdsNoTensors() {
        let store = WeightStore.recording(name: "plan")
        expectWeightsError(.missingTensor, file: "plan", key: "a.weight", contains: ["recording store"]) {
            _ = try store.scoped("a.").take("weight", shape: [2])
        }
        #expect(store.recordedShapes().isEmpty)
    }

    @Test func expectOnAReadingStoreChecksAndConsumes() throws {
        let dir = TempDir()
        defer { dir.remove() }
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        try w.add("norm.weight", floats: [1, 1], shape: [2])
        try w.write(to: dir.file("m.safetensors"))
        let store = try WeightStore.open(dir.file("m.safetensors"))
        #expect(!store.isRecording)
        expectWeightsError(.shapeMismatch, file: dir.file("m.safetensors"), key: "norm.weight", contains: ["[3]"]) {
            try store.scoped("norm.").expect("weight", shape: [3])
        }
        try store.scoped("norm.").expect("weight", shape: [2])
        #expect(store.consumedKeys() == ["norm.weight"] && store.recordedShapes().isEmpty)
    }
}
