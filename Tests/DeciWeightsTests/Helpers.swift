import DeciWeights
import Foundation
import Testing
import TestSupport

/// A fresh temporary folder, removed when the value is dropped by `defer { dir.remove() }`.
struct TempDir {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("deciweights-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func write(_ name: String, text: String) -> String { write(name, Array(text.utf8)) }

    func contents() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The bytes of a safetensors file with the given header text and data section; `declaredLength`
/// overrides the 8-byte length prefix (to make it lie).
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + h + data
}

/// Runs `body`, which must throw a WeightsError of `kind`; checks that its message names `file`
/// (when given), the key (when given) and contains every fragment. Returns the error.
@discardableResult
func expectWeightsError(_ kind: WeightsError.Kind, file: String? = nil, key: String? = nil, contains fragments: [String] = [],
                        sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () throws -> Void) -> WeightsError? {
    do {
        try body()
        Issue.record("expected a .\(kind) error, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as WeightsError {
        #expect(error.kind == kind, "got .\(error.kind): \(error.message)", sourceLocation: sourceLocation)
        if let file {
            #expect(error.file == file, "file: \(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix(file), "message should start with the file: \(error.message)", sourceLocation: sourceLocation)
        }
        if let key {
            #expect(error.key == key, "key: \(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains("tensor '\(key)'"), "message should name the key: \(error.message)", sourceLocation: sourceLocation)
        }
        for f in fragments {
            #expect(error.message.contains(f), "message lacks \"\(f)\": \(error.message)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected WeightsError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Path of a committed fixture under Fixtures/weights/.
func fixture(_ name: String) -> String { FixturePaths.url("weights/" + name).path }

func floatBits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

func leBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var out: [UInt8] = []
    for v in values { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    return out
}

func leBytes(_ values: [Float]) -> [UInt8] { leBytes(values.map(\.bitPattern)) }
