import DeciDiffusion
import DeciImage
import Foundation
import Testing
import TestSupport

/// The library's output path (ImageOutput.swift, OutputPaths.swift) against what the CLI's Runner
/// wrote before it moved there: same `parameters` text, same PNG bytes, same file names.
@Suite("Image output")
struct ImageOutputTests {
    static let demoFolder = PipelineFixtures.demoFolder

    /// The old `Runner.run` parameter construction, copied verbatim (with `seed`, `request` and
    /// `modelName` as it had them): the oracle the library must keep matching.
    static func oldRunnerParameters(result: GenerationResult, request: GenerationRequest, seed: UInt64,
                                    modelName: String) -> [GenerationParameters] {
        let req = result.request
        var out: [GenerationParameters] = []
        for (i, image) in result.images.enumerated() {
            var extra: [GenerationParameters.Field] = []
            if req.guidanceRescale > 0 { extra.append(.init("Guidance rescale", String(req.guidanceRescale))) }
            if request.initImage != nil { extra.append(.init("Denoising strength", String(req.strength))) }
            if req.clipSkip > 0 { extra.append(.init("Clip skip", String(req.clipSkip + 1))) }
            extra.append(.init("RNG", "CPU"))
            extra.append(.init("Batch pos", String(i)))
            out.append(GenerationParameters(prompt: req.prompts[0], negativePrompt: req.negativePrompts[0], steps: req.steps,
                                            sampler: result.sampler, cfgScale: req.guidanceScale, seed: seed, width: image.width,
                                            height: image.height, model: modelName, extra: extra))
        }
        return out
    }

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("image-output-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes through the library and checks every file against a PNG built the old way.
    func checkAgainstOldRunner(_ pipeline: DiffusionPipeline, _ request: GenerationRequest) throws {
        let result = try pipeline.generate(request)
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let paths = try OutputPaths.resolve(dir.appendingPathComponent("out.png").path, count: result.images.count, seed: request.seed)
        try result.writePNGs(to: paths, model: pipeline.modelName)
        let expected = Self.oldRunnerParameters(result: result, request: request, seed: request.seed, modelName: "demo")
        #expect(paths.count == result.images.count)
        for (i, path) in paths.enumerated() {
            let written = try FileIOHelper.read(path)
            let oracle = try ImageFile.encodePNG(result.images[i], text: [PNGTextChunk(key: "parameters", value: expected[i].text)])
            #expect(written == oracle, "image \(i): file bytes differ from the old Runner's PNG")
            #expect(try result.pngData(forImage: i, model: "demo") == oracle)
            #expect(result.parameters(forImage: i, model: "demo") == expected[i])
            #expect(try ImageFile.decode(written).text("parameters") == expected[i].text)
        }
    }

    @Test("Text-to-image batch: the library writes the old Runner's bytes (rescale, clip skip, batch pos)")
    func textToImageMatchesOldRunner() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        #expect(pipeline.modelName == "demo")
        var request = GenerationRequest(prompt: "a red circle on a blue background", negativePrompt: "green")
        request.imagesPerPrompt = 2
        request.steps = 3
        request.clipSkip = 1
        request.seed = 7
        try checkAgainstOldRunner(pipeline, request)
        let text = try DiffusionPipeline(folder: Self.demoFolder).generate(request).parameters(forImage: 1, model: "demo").text
        #expect(text.contains("Guidance rescale: 0.7, Clip skip: 2, RNG: CPU, Batch pos: 1"), "\(text)")
    }

    @Test("Image-to-image: Denoising strength is recorded as before")
    func imageToImageMatchesOldRunner() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var request = GenerationRequest(prompt: "a yellow square on a blue background")
        request.initImage = try RGBImage(width: 64, height: 64, red: 200, green: 30, blue: 30)
        request.strength = 0.5
        request.steps = 4
        request.seed = 11
        try checkAgainstOldRunner(pipeline, request)
        let text = try pipeline.generate(request).parameters(forImage: 0, model: nil).text
        #expect(text.contains("Denoising strength: 0.5"), "\(text)")
        #expect(!text.contains("Model:"), "no model given, no Model field: \(text)")
    }

    @Test("pngData refuses an index outside the batch, naming it")
    func pngDataIndex() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var request = GenerationRequest(prompt: "a red circle")
        request.steps = 1
        let result = try pipeline.generate(request)
        #expect(throws: ImageIndexError(index: 3, count: 1)) { try result.pngData(forImage: 3, model: nil) }
        #expect(ImageIndexError(index: 3, count: 1).description == "image index: 3 is outside 0..<1")
        #expect(throws: OutputError("paths: 2 given for 1 image(s)")) { try result.writePNGs(to: ["/tmp/a.png", "/tmp/b.png"], model: nil) }
    }

    @Test("Seeds: a given seed is kept, nil draws from 0...UInt32.max")
    func seeds() {
        #expect(GenerationRequest.resolveSeed(123_456_789_012) == 123_456_789_012)
        let drawn = (0..<64).map { _ in GenerationRequest.resolveSeed(nil) }
        #expect(drawn.allSatisfy { $0 <= UInt64(UInt32.max) })
        #expect(Set(drawn).count > 1, "64 random seeds were all equal")
    }

    @Test("Naming: a file, a numbered batch, a folder of seed-index files")
    func naming() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("x.png").path
        #expect(try OutputPaths.resolve(file, count: 1, seed: 5) == [file])
        let stem = dir.appendingPathComponent("x").path
        #expect(try OutputPaths.resolve(file, count: 3, seed: 5) == ["\(stem)-1.png", "\(stem)-2.png", "\(stem)-3.png"])
        #expect(try OutputPaths.resolve(dir.appendingPathComponent("X.PNG").path, count: 1, seed: 5).count == 1)
        // An existing folder without a slash, and a new one with a slash (created).
        #expect(try OutputPaths.resolve(dir.path, count: 2, seed: 42) == [dir.appendingPathComponent("42-0.png").path,
                                                                         dir.appendingPathComponent("42-1.png").path])
        let fresh = dir.appendingPathComponent("new").path + "/"
        #expect(try OutputPaths.resolve(fresh, count: 1, seed: 9) == [dir.appendingPathComponent("new/9-0.png").path])
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: fresh, isDirectory: &isDir) && isDir.boolValue)
        #expect(try OutputPaths.resolve(file, count: 0, seed: 1) == [])
    }

    @Test("Naming errors name the output and the reason")
    func namingErrors() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jpg = dir.appendingPathComponent("x.jpg").path
        #expect(throws: OutputError("--output \(jpg): give a .png file or a folder ending in /")) {
            try OutputPaths.resolve(jpg, count: 1, seed: 0)
        }
        let missing = dir.appendingPathComponent("nope")
        let inMissing = missing.appendingPathComponent("x.png").path
        #expect(throws: OutputError("--output \(inMissing): folder \(missing.path) does not exist")) {
            try OutputPaths.resolve(inMissing, count: 1, seed: 0)
        }
        #expect(throws: OutputError("count: -1 images is negative")) { try OutputPaths.resolve(jpg, count: -1, seed: 0) }
    }
}

/// Reads a whole file as bytes.
enum FileIOHelper {
    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
}
