import DeciDiffusion
import Foundation
import Testing
import TestSupport

/// Request limits (GenerationLimits.swift) and the memory estimate (MemoryEstimate.swift) on the
/// demo model.
@Suite("Generation limits and memory estimate")
struct GenerationLimitsTests {
    static let demoFolder = PipelineFixtures.demoFolder

    @Test("An image over the pixel limit is refused before any work, naming its size")
    func pixelLimit() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var request = GenerationRequest(prompt: "a red circle")
        request.width = 2048
        request.height = 1024
        let expected = RequestError("width x height: 2048x1024 = 2097152 pixels is over the limit of 1048576 pixels per image (--max-pixels)")
        #expect(throws: expected) { try pipeline.resolve(request, limits: GenerationLimits()) }
        var steps = 0
        #expect(throws: expected) {
            try pipeline.generate(request, limits: GenerationLimits()) { _ in steps += 1; return true }
        }
        #expect(steps == 0, "the refused request ran \(steps) step(s)")
        // Without limits (the CLI) the same request resolves.
        #expect(try pipeline.resolve(request).width == 2048)
        request.width = 1024
        #expect(try pipeline.resolve(request, limits: GenerationLimits()).height == 1024)
    }

    @Test("A batch over the limit is refused, counting prompts x images per prompt")
    func batchLimit() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var request = GenerationRequest(prompts: ["a", "b", "c"])
        request.imagesPerPrompt = 3
        #expect(throws: RequestError("batch: 3 prompt(s) x 3 image(s) per prompt = 9 images is over the limit of 8 images per request (--max-batch)")) {
            try pipeline.resolve(request, limits: GenerationLimits())
        }
        request.imagesPerPrompt = 2
        #expect(try pipeline.resolve(request, limits: GenerationLimits()).batch == 6)
        #expect(throws: RequestError.self) { try pipeline.resolve(request, limits: GenerationLimits(maxPixelsPerImage: 64 * 64, maxBatch: 5)) }
    }

    @Test("VAE tiling is carried from the request to the resolved request")
    func tilingIsARequestOption() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var request = GenerationRequest(prompt: "a red circle")
        #expect(try pipeline.resolve(request).vaeTiling == false)
        request.vaeTiling = true
        #expect(try pipeline.resolve(request).vaeTiling == true)
    }

    @Test("The estimate grows with width, height and batch, shrinks with tiling, and covers the latents")
    func memoryEstimateIsMonotone() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        func estimate(_ w: Int, _ h: Int, batch: Int = 1, tiling: Bool = false, cfg: Double = 7.5) throws -> Int {
            var request = GenerationRequest(prompt: "a red circle")
            request.width = w
            request.height = h
            request.imagesPerPrompt = batch
            request.vaeTiling = tiling
            request.guidanceScale = cfg
            return pipeline.memoryEstimate(for: try pipeline.resolve(request))
        }
        let sizes = [64, 128, 256, 512, 1024]
        let bySize = try sizes.map { try estimate($0, $0) }
        #expect(zip(bySize, bySize.dropFirst()).allSatisfy { $0 < $1 }, "not increasing in size: \(bySize)")
        #expect(try estimate(512, 256) < estimate(512, 512) && estimate(256, 512) < estimate(512, 512))
        let byBatch = try (1...4).map { try estimate(256, 256, batch: $0) }
        #expect(zip(byBatch, byBatch.dropFirst()).allSatisfy { $0 < $1 }, "not increasing in batch: \(byBatch)")
        #expect(try estimate(1024, 1024, tiling: true) < estimate(1024, 1024), "tiling does not lower the estimate")
        #expect(try estimate(512, 512, cfg: 1) < estimate(512, 512), "guidance off should need less")
        // At least the image floats it returns: 2 x 3 x 1024 x 1024 x 4 bytes.
        #expect(try estimate(1024, 1024) >= 2 * 3 * 1024 * 1024 * 4)
    }
}
