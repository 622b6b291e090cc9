import DeciWeights
import Foundation
import Testing

/// Reading files written by Python's safetensors package.
@Suite struct ReaderTests {
    let path = fixture("layout.safetensors")

    @Test func headerAndKeys() throws {
        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.headerByteCount % 8 == 0)
        #expect(Set(file.keys) == ["model.f32", "model.f16", "model.bf16", "model.f64", "buffers.position_ids", "buffers.i32",
                                   "buffers.i64", "buffers.u8", "buffers.i8", "buffers.i16", "buffers.mask", "scalar", "empty"])
        // keys come in data-offset order, and the tensors tile the data section
        var end = 0
        for k in file.keys {
            let r = try #require(file.infos[k]).dataOffsets
            #expect(r.lowerBound == end, "\(k)")
            end = r.upperBound
        }
        #expect(end == file.dataByteCount)
    }

    @Test func floatTensors() throws {
        let file = try SafeTensorsFile(path: path)
        let f32 = try file.tensor("model.f32")
        #expect(f32.dtype == .F32 && f32.shape == [2, 3, 4] && f32.elementCount == 24 && f32.byteCount == 96)
        #expect(try f32.floats() == (0..<24).map { Float($0) * 0.5 - 3 })

        let f16 = try file.tensor("model.f16")
        #expect(f16.dtype == .F16 && f16.shape == [3, 4])
        // torch: (arange(12) / 7).half(); reference values via Float16 rounding of the f32 quotient
        let want16 = (0..<12).map { WeightConversion.float(fromHalfBits: WeightConversion.halfBits(from: Float($0) / 7)) }
        #expect(try f16.floats() == want16)

        let bf16 = try file.tensor("model.bf16")
        #expect(bf16.dtype == .BF16 && bf16.shape == [6])
        #expect(try bf16.floats() == (0..<6).map { Float($0) * -1.25 })
        #expect(try bf16.bfloat16Bits() == (0..<6).map { WeightConversion.bfloat16Bits(from: Float($0) * -1.25) })

        let f64 = try file.tensor("model.f64")
        #expect(f64.dtype == .F64)
        #expect(try f64.floats() == [1.5, -2.25, .infinity])  // 1e300 overflows f32

        let scalar = try file.tensor("scalar")
        #expect(scalar.shape == [] && scalar.elementCount == 1)
        #expect(try scalar.floats() == [42])

        let empty = try file.tensor("empty")
        #expect(empty.shape == [3, 0] && empty.elementCount == 0 && empty.byteCount == 0)
        #expect(try empty.floats() == [])
        #expect(try empty.bfloat16Bits() == [])
    }

    @Test func integerTensors() throws {
        let file = try SafeTensorsFile(path: path)
        let pos = try file.tensor("buffers.position_ids")
        #expect(pos.dtype == .I64 && pos.shape == [1, 77])
        #expect(try pos.int64s() == (0..<77).map(Int64.init))
        #expect(try file.tensor("buffers.i32").int64s() == [Int64(Int32.min), -1, 0, Int64(Int32.max)])
        #expect(try file.tensor("buffers.i64").int64s() == [Int64.min, -1, 0, Int64.max])
        #expect(try file.tensor("buffers.u8").int64s() == [0, 1, 254, 255])
        #expect(try file.tensor("buffers.i8").int64s() == [-128, -1, 0, 127])
        #expect(try file.tensor("buffers.i16").int64s() == [-32768, 5, 32767])
        let mask = try file.tensor("buffers.mask")
        #expect(mask.dtype == .BOOL)
        #expect(try mask.int64s() == [1, 0, 1])
    }

    @Test func conversionsOfWrongDTypeAreTypedErrors() throws {
        let file = try SafeTensorsFile(path: path)
        expectWeightsError(.unsupportedConversion, file: path, key: "buffers.i64", contains: ["I64"]) {
            _ = try file.tensor("buffers.i64").floats()
        }
        expectWeightsError(.unsupportedConversion, file: path, key: "buffers.mask", contains: ["BOOL", "BF16"]) {
            _ = try file.tensor("buffers.mask").bfloat16Bits()
        }
        expectWeightsError(.unsupportedConversion, file: path, key: "model.f32") {
            _ = try file.tensor("model.f32").int64s()
        }
        expectWeightsError(.missingTensor, file: path, key: "nope") { _ = try file.tensor("nope") }
    }

    @Test func convertIntoCallerBuffers() throws {
        let file = try SafeTensorsFile(path: path)
        let t = try file.tensor("model.f16")
        let want = try t.floats()
        // an aligned buffer with guard cells on both sides: exactly elementCount values are written
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 4 * 16, alignment: 64)
        defer { raw.deallocate() }
        let buf = raw.bindMemory(to: Float.self, capacity: 16)
        buf.initialize(repeating: -7, count: 16)
        try t.convertFloats(into: buf + 2)
        #expect(Array(UnsafeBufferPointer(start: buf + 2, count: 12)) == want)
        #expect(buf[0] == -7 && buf[1] == -7 && buf[14] == -7 && buf[15] == -7)

        var bits = [UInt16](repeating: 0, count: 12)
        try bits.withUnsafeMutableBufferPointer { try t.convertBFloat16Bits(into: $0) }
        #expect(bits == want.map(WeightConversion.bfloat16Bits(from:)))

        var wrong = [Float](repeating: 0, count: 11)
        expectWeightsError(.bufferSize, file: path, key: "model.f16", contains: ["11", "12"]) {
            try wrong.withUnsafeMutableBufferPointer { try t.convertFloats(into: $0) }
        }
    }

    @Test func viewsKeepTheMappingAlive() throws {
        // Drop every reference to the file but the view's; the bytes must stay readable.
        let view: WeightTensor = try { try SafeTensorsFile(path: path).tensor("model.f32") }()
        #expect(try view.floats()[23] == 8.5)
        #expect(view.withRawBytes { $0.count } == 96)
        #expect(view.description == "model.f32: F32 [2, 3, 4]")
    }

    @Test func unalignedTensorData() throws {
        // A hand-made file whose header length is not a multiple of 8: every tensor is misaligned.
        let dir = TempDir()
        defer { dir.remove() }
        let values: [Float] = [1, -2, .pi, Float(bitPattern: 0x0001_16C2)]  // last one subnormal
        let halves: [UInt16] = [0x3C00, 0x0001, 0xFC00]
        let header = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]}}"#
        #expect(header.utf8.count % 4 != 0)
        let p = dir.write("odd.safetensors", safetensorsBytes(header: header, data: leBytes(values) + leBytes(halves)))
        let file = try SafeTensorsFile(path: p)
        #expect(floatBits(try file.tensor("a").floats()) == floatBits(values))
        #expect(try file.tensor("b").floats() == [1, 0x1p-24, -.infinity])
        #expect(file.metadata == nil)
    }

    @Test func firstDimensionSlices() throws {
        let file = try SafeTensorsFile(path: path)
        let t = try file.tensor("model.f32")  // [2, 3, 4], values i * 0.5 - 3
        let second = try t.slicingFirstDimension(1..<2)
        #expect(second.shape == [1, 3, 4] && second.name == "model.f32[1..<2]")
        #expect(try second.floats() == (12..<24).map { Float($0) * 0.5 - 3 })
        let half = try file.tensor("model.f16").slicingFirstDimension(1..<3)  // [3, 4] -> rows 1, 2
        #expect(try half.floats() == Array(try file.tensor("model.f16").floats()[4..<12]))
        #expect(try t.slicingFirstDimension(2..<2).elementCount == 0)
        expectWeightsError(.invalidShape, file: path, key: "model.f32", contains: ["1..<3"]) { _ = try t.slicingFirstDimension(1..<3) }
        expectWeightsError(.invalidShape, file: path, key: "scalar") { _ = try file.tensor("scalar").slicingFirstDimension(0..<1) }
    }
}
