import DeciDiffusion
import DeciImage
import Foundation
import Testing
import TestSupport

/// Runs the README's "Using the library from Swift" snippet, so the README cannot drift from the API.
/// The snippet is the block between the markers below, with the two paths standing for the
/// README's `"Models/demo"` and `"output.png"`; the first test checks the README says exactly that.
@Suite("README snippet")
struct ReadmeSnippetTests {
    static let repoRoot = FixturePaths.root.deletingLastPathComponent()

    /// The snippet's lines as this file runs them, with the paths written as in the README.
    static func snippetAsReadmeShowsIt() throws -> [String] {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let begin = lines.firstIndex(where: { $0.hasSuffix("// README snippet begin") }),
              let end = lines.firstIndex(where: { $0.hasSuffix("// README snippet end") }), begin < end else { return [] }
        return lines[(begin + 1)..<end].map {
            $0.trimmingCharacters(in: .whitespaces)
                .replacingOccurrences(of: "demoFolder.path", with: "\"Models/demo\"")
                .replacingOccurrences(of: "outputPath", with: "\"output.png\"")
        }
    }

    /// The README's Swift block in that section, without imports and blank lines.
    static func readmeSnippet() throws -> [String] {
        let readme = try String(contentsOf: repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let section = readme.range(of: "## Using the library from Swift"),
              let open = readme.range(of: "```swift\n", range: section.upperBound..<readme.endIndex),
              let close = readme.range(of: "```", range: open.upperBound..<readme.endIndex) else { return [] }
        return readme[open.upperBound..<close.lowerBound].split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
    }

    @Test("The README shows the snippet this test runs")
    func readmeMatches() throws {
        let ran = try Self.snippetAsReadmeShowsIt(), shown = try Self.readmeSnippet()
        #expect(!ran.isEmpty)
        #expect(shown == ran)
    }

    @Test("The snippet writes a PNG of the demo model's size with its parameters")
    func snippetWritesPNG() throws {
        let demoFolder = Self.repoRoot.appendingPathComponent("Models/demo")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("readme-snippet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outputPath = dir.appendingPathComponent("output.png").path

        // README snippet begin
        let pipeline = try DiffusionPipeline(folder: URL(fileURLWithPath: demoFolder.path))
        let prompt = "a red circle on a blue background"
        var request = GenerationRequest(prompt: prompt)
        request.seed = 42
        let result = try pipeline.generate(request)
        let image = result.images[0]
        let parameters = GenerationParameters(prompt: prompt, steps: result.request.steps, sampler: result.sampler,
                                              cfgScale: result.request.guidanceScale, seed: request.seed,
                                              width: image.width, height: image.height)
        try ImageFile.writePNG(image, to: outputPath, parameters: parameters)
        // README snippet end

        let written = try ImageFile.read(path: outputPath)
        #expect(written.format == .png)
        #expect(written.image.width == pipeline.defaults.width && written.image.height == pipeline.defaults.height)
        #expect(written.image.pixels == image.pixels)
        let read = try #require(written.text("parameters").flatMap(GenerationParameters.parse))
        #expect(read.prompt == prompt && read.seed == 42 && read.steps == pipeline.defaults.steps)
    }
}
