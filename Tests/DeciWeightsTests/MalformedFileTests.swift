import DeciWeights
import Foundation
import Testing

/// Malformed files built byte by byte; each must fail with the right error kind and a message that
/// names the file and (where one is involved) the tensor.
@Suite struct MalformedFileTests {
    /// Writes `bytes` to a temp file, expects opening it to fail as described.
    @discardableResult
    private func expectRejected(_ bytes: [UInt8], _ kind: WeightsError.Kind, key: String? = nil, contains: [String] = [],
                                sourceLocation: SourceLocation = #_sourceLocation) -> WeightsError? {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.write("model.safetensors", bytes)
        return expectWeightsError(kind, file: path, key: key, contains: contains, sourceLocation: sourceLocation) {
            _ = try SafeTensorsFile(path: path)
        }
    }

    private func file(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        safetensorsBytes(header: header, data: data, declaredLength: declaredLength)
    }

    private let zeros8 = [UInt8](repeating: 0, count: 8)

    @Test func tooSmall() {
        expectRejected([], .fileTooSmall, contains: ["0 bytes"])
        expectRejected([1, 2, 3, 4, 5], .fileTooSmall, contains: ["5 bytes", "8-byte"])
    }

    @Test func headerLengthBounds() {
        expectRejected(file("{}", declaredLength: 1 << 40), .headerLength, contains: ["1099511627776", "100000000"])
        expectRejected(file("{}", declaredLength: UInt64.max), .headerLength)
        // claims more header than the file has (truncated header)
        expectRejected(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, declaredLength: 200), .headerLength,
                       contains: ["200", "runs past the end"])
    }

    @Test func headerLengthThatLiesShort() {
        // The prefix says the header is shorter than the JSON: the cut JSON is invalid.
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        expectRejected(file(header, data: [0, 0, 0, 0], declaredLength: UInt64(header.utf8.count - 3)), .headerNotJSON)
        // ... or longer, swallowing data bytes that are not whitespace
        expectRejected(file(header, data: [0x20, 0x20, 0x41, 0x41], declaredLength: UInt64(header.utf8.count + 4)), .headerNotJSON,
                       contains: ["after the JSON value"])
    }

    @Test func headerEncodingAndSyntax() {
        expectRejected([0x04, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0xFE, 0x7D], .headerNotUTF8)
        expectRejected(file(#"{"a": "#), .headerNotJSON, contains: ["byte"])
        expectRejected(file("not json at all"), .headerNotJSON)
        expectRejected(file("{}\0\0\0\0\0\0"), .headerNotJSON)  // NUL padding is not allowed; spaces are
        expectRejected(file(String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)), .headerNotJSON, contains: ["nesting"])
        expectRejected(file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#),
                       .headerNotJSON, contains: ["duplicate key \"a\""])
        expectRejected(file("[1, 2]"), .invalidHeader, contains: ["array"])
    }

    @Test func metadataMustBeStrings() {
        expectRejected(file(#"{"__metadata__":{"format":"pt","n":1}}"#), .invalidHeader, contains: ["__metadata__", "'n'", "number"])
        expectRejected(file(#"{"__metadata__":"pt"}"#), .invalidHeader, contains: ["__metadata__"])
    }

    @Test func entryStructure() {
        expectRejected(file(#"{"w":3}"#), .invalidHeader, key: "w", contains: ["number"])
        expectRejected(file(#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .invalidHeader, key: "w", contains: ["dtype"])
        expectRejected(file(#"{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .invalidHeader, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .invalidHeader, key: "w", contains: ["shape"])
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]), .invalidHeader, key: "w", contains: ["data_offsets"])
    }

    @Test func unknownDType() {
        expectRejected(file(#"{"conv.weight":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       .unknownDType, key: "conv.weight", contains: ["\"F17\""])
        expectRejected(file(#"{"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .unknownDType, key: "w")
    }

    @Test func badShapes() {
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,8]}}"#, data: zeros8), .invalidShape, key: "w",
                       contains: ["-1"])
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: zeros8), .invalidShape, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1e1],"data_offsets":[0,40]}}"#, data: zeros8), .invalidShape, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, data: zeros8), .invalidShape, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[2305843009213693952,4],"data_offsets":[0,8]}}"#, data: zeros8),
                       .invalidShape, key: "w", contains: ["more"])
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#, data: zeros8),
                       .invalidShape, key: "w")
        // 3 packed 4-bit values are not a whole number of bytes
        expectRejected(file(#"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: [0, 0]), .invalidShape, key: "w",
                       contains: ["12 bits"])
    }

    @Test func badOffsets() {
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: zeros8), .invalidOffsets, key: "w",
                       contains: ["[8, 4]"])
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: zeros8), .invalidOffsets, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: zeros8), .invalidOffsets, key: "w")
        expectRejected(file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}"#, data: zeros8),
                       .invalidOffsets, key: "w")
    }

    @Test func wrongByteLengthMessage() {
        let e = expectRejected(file(#"{"conv_in.weight":{"dtype":"F16","shape":[320,4,3,3],"data_offsets":[0,100]}}"#,
                                    data: [UInt8](repeating: 0, count: 100)),
                               .byteLengthMismatch, key: "conv_in.weight")
        #expect(e?.problem == "data_offsets [0, 100] give 100 bytes but F16 [320, 4, 3, 3] needs 23040")
        #expect(e?.message.hasSuffix("model.safetensors: tensor 'conv_in.weight': data_offsets [0, 100] give 100 bytes but F16 [320, 4, 3, 3] needs 23040") == true)
    }

    @Test func overlapNamesBothTensors() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectRejected(file(h, data: [UInt8](repeating: 0, count: 12)), .overlap, key: "b", contains: ["'a'", "[0, 8]", "[4, 12]"])
        // a zero-size tensor strictly inside another one also overlaps
        let h2 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        expectRejected(file(h2, data: zeros8), .overlap, key: "e")
        // identical ranges
        let h3 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#
        expectRejected(file(h3, data: zeros8), .overlap, key: "b", contains: ["'a'"])
    }

    @Test func gapsAndTrailingBytes() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#
        expectRejected(file(h, data: [UInt8](repeating: 0, count: 20)), .gap, key: "b", contains: ["4 bytes", "'a'"])
        let leading = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        expectRejected(file(leading, data: zeros8), .gap, key: "a", contains: ["start of the data section"])
        let one = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expectRejected(file(one, data: [UInt8](repeating: 0, count: 12)), .gap, contains: ["4 bytes after tensor 'a'"])
        expectRejected(file("{}", data: [1, 2, 3]), .gap, contains: ["3 bytes"])
    }

    @Test func truncatedData() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        expectRejected(file(h, data: [UInt8](repeating: 0, count: 10)), .truncated, key: "b", contains: ["16", "10", "truncated"])
        expectRejected(file(h, data: []), .truncated, key: "a")
    }

    @Test func offsetsPastTheEnd() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[100,108]}}"#
        expectRejected(file(h, data: zeros8), .invalidOffsets, key: "a", contains: ["[100, 108]", "past the end", "8-byte data section"])
    }

    @Test func fileSystemProblems() {
        let dir = TempDir()
        defer { dir.remove() }
        let missing = dir.file("absent.safetensors")
        expectWeightsError(.io, file: missing, contains: ["cannot open"]) { _ = try SafeTensorsFile(path: missing) }
        expectWeightsError(.io, file: dir.path) { _ = try SafeTensorsFile(path: dir.path) }
    }

    @Test func acceptedEdgeCases() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // No tensors at all; unknown extra fields ignored; whitespace padding; zero-size tensors
        // sharing an offset with a real one; escaped key names.
        let p1 = dir.write("empty.safetensors", file("{}     "))
        #expect(try SafeTensorsFile(path: p1).keys.isEmpty)
        let h = #"{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a\u00e9\n":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":[1,{"x":null}]},"e":{"dtype":"BF16","shape":[2,0],"data_offsets":[4,4]}}"#
        let p2 = dir.write("edge.safetensors", file(h + "  ", data: leBytes([Float(2.5)])))
        let f = try SafeTensorsFile(path: p2)
        #expect(Set(f.keys) == ["z", "aé\n", "e"])
        #expect(try f.tensor("aé\n").floats() == [2.5])
        #expect(try f.tensor("e").floats() == [])
    }
}
