import Foundation
import Testing

/// Only the op layer touches tensor memory and kernels: a second backend then changes DeciTensor
/// alone. Scans every Swift file under Sources/ and Tests/ (the op layer's own tests included:
/// they reach the kernels' test knobs through `KernelOverrides`) except Sources/DeciTensor.
@Suite("Op boundary")
struct OpBoundaryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let forbidden: [(pattern: String, what: String)] = [
        (#"\.pointer\b"#, "raw tensor memory (.pointer)"),
        (#"\bdd_[a-z0-9_]+\s*\("#, "a kernel call (dd_*)"),
        (#"^\s*(@_implementationOnly\s+|@testable\s+)?import\s+CDeciKernels\b"#, "import CDeciKernels"),
    ]

    @Test func nothingAboveTheOpLayerTouchesTensorMemoryOrKernels() throws {
        var hits: [String] = []
        for top in ["Sources", "Tests"] {
            let dir = Self.root.appendingPathComponent(top)
            guard let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in files where url.pathExtension == "swift" {
                let rel = String(url.path.dropFirst(Self.root.path.count + 1))
                if rel.hasPrefix("Sources/DeciTensor/") { continue }
                let lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
                for (i, line) in lines.enumerated() {
                    // Comments and string literals may name what they like (this file's patterns do).
                    let code = (line.components(separatedBy: "//").first ?? line)
                        .replacingOccurrences(of: #""[^"]*""#, with: "\"\"", options: .regularExpression)
                    for f in Self.forbidden where code.range(of: f.pattern, options: .regularExpression) != nil {
                        hits.append("\(rel):\(i + 1): \(f.what): \(line.trimmingCharacters(in: .whitespaces))")
                    }
                }
            }
        }
        #expect(hits.isEmpty, "\(hits.count) uses outside DeciTensor:\n\(hits.joined(separator: "\n"))")
        #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent("Sources/DeciTensor").path), "scan root \(Self.root.path) is wrong")
    }
}
