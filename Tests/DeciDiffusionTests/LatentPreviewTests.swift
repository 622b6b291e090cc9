import DeciDiffusion
import DeciImage
import Foundation
import Testing
import TestSupport

/// Per-step previews: the cheap latent-to-RGB map (LatentPreview.swift) against values worked out
/// by hand, and the pipeline's preview sources, full preview decodes and partial results on cancel
/// (PreviewDecoding.swift) on the demo model.
@Suite("Latent previews")
struct LatentPreviewTests {
    static let demoFolder = PipelineFixtures.demoFolder

    /// Two latent pixels (1 x 4 x 1 x 2, NCHW): pixel 0 is [1, 0, 0, 0], pixel 1 [0.5, -1, 2, 1].
    static let twoPixels = LatentPreviewSource(latents: [1, 0.5, 0, -1, 0, 2, 0, 1], batch: 1, channels: 4, height: 1, width: 2)

    @Test("The SD15 factors, clamp((rgb + 1) / 2) * 255 truncated, at latent resolution")
    func handComputedValues() throws {
        let images = LatentPreview.rgb(Self.twoPixels)
        let image = try #require(images.first)
        #expect(images.count == 1 && image.width == 2 && image.height == 1)
        // Pixel 0 = channel 0's row: (0.3512, 0.2297, 0.3227) -> 172.278, 156.787, 168.644.
        #expect(image[0, 0] == (172, 156, 168))
        // Pixel 1: R = 0.5*0.3512 - 0.3250 + 2*(-0.2829) - 0.2120 = -0.9272 -> 9.282;
        // G = 0.11485 - 0.4974 + 0.3524 - 0.2616 = -0.29175 -> 90.302; B = -0.24715 -> 95.988 (truncated to 95).
        #expect(image[1, 0] == (9, 90, 95))
        // The same with the formula written out in double precision.
        let x: [[Double]] = [[1, 0, 0, 0], [0.5, -1, 2, 1]]
        for (p, latent) in x.enumerated() {
            let rgb = (0..<3).map { k in (0..<4).reduce(0.0) { $0 + latent[$1] * Double(LatentPreview.sd15Factors[$1][k]) } }
            let bytes = rgb.map { UInt8(min(max(($0 + 1) / 2, 0), 1) * 255) }
            let got = image[p, 0]
            #expect([got.0, got.1, got.2] == bytes, "pixel \(p)")
        }
    }

    @Test("Values outside [-1, 1] clamp to 0 and 255")
    func clamping() throws {
        let source = LatentPreviewSource(latents: [10, -10, 10, -10, 10, -10, 10, -10], batch: 1, channels: 4, height: 1, width: 2)
        let image = try #require(LatentPreview.rgb(source).first)
        // Channel sums of the factors: R 0.1813, G 0.6417, B 0.1121, all positive: +10 saturates, -10 floors.
        #expect(image[0, 0] == (255, 255, 255))
        #expect(image[1, 0] == (0, 0, 0))
    }

    @Test("Size rules: nearest-neighbour upscaling, latent size for none or a non-positive side, one image per batch element")
    func sizes() throws {
        let up = try #require(LatentPreview.rgb(Self.twoPixels, upscaledTo: (width: 4, height: 3)).first)
        #expect(up.width == 4 && up.height == 3)
        for y in 0..<3 {
            #expect(up[0, y] == (172, 156, 168) && up[1, y] == (172, 156, 168))
            #expect(up[2, y] == (9, 90, 95) && up[3, y] == (9, 90, 95))
        }
        #expect(LatentPreview.rgb(Self.twoPixels, upscaledTo: (width: 0, height: 8)).first?.width == 2)
        let batch = LatentPreviewSource(latents: [Float](repeating: 0, count: 2 * 4 * 3 * 5), batch: 2, channels: 4, height: 3, width: 5)
        let images = LatentPreview.rgb(batch, upscaledTo: (width: 40, height: 24))
        #expect(images.count == 2 && images.allSatisfy { $0.width == 40 && $0.height == 24 })
        // Zero latents map to mid grey, 127.5 truncated.
        #expect(images[1][39, 23] == (127, 127, 127))
        let wrong = LatentPreviewSource(latents: [1, 2, 3], batch: 1, channels: 4, height: 1, width: 2)
        #expect(LatentPreview.rgb(wrong).isEmpty)
    }

    static func request(steps: Int = 4, scheduler: String? = nil) -> GenerationRequest {
        var r = GenerationRequest(prompt: "a red circle on a blue background")
        r.steps = steps
        r.seed = 21
        r.scheduler = scheduler
        return r
    }

    @Test("Reading previews and decoding them mid-run does not change the result")
    func previewsDoNotDisturbSampling() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        let plain = try pipeline.generate(Self.request())
        var origins: [LatentPreviewSource.Origin] = []
        let watched = try pipeline.generate(Self.request()) { p in
            origins.append(p.preview.origin)
            let cheap = LatentPreview.rgb(p.preview, upscaledTo: (width: 64, height: 64))
            let full = (try? pipeline.decodePreview(p.preview)) ?? []
            return cheap.count == 1 && full.count == 1 && full[0].width == 64
        }
        #expect(watched.images == plain.images)
        #expect(origins == Array(repeating: .schedulerEstimate, count: 4), "DDIM reports its x0: \(origins)")
    }

    @Test("PNDM's estimate is derived from the model output; Euler reports its own")
    func originsPerScheduler() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        for (name, origin) in [("pndm", LatentPreviewSource.Origin.derivedFromModelOutput), ("euler", .schedulerEstimate),
                               ("unipc", .derivedFromModelOutput)] {
            var seen: [LatentPreviewSource] = []
            _ = try pipeline.generate(Self.request(steps: 4, scheduler: name)) { p in seen.append(p.preview); return true }
            #expect(!seen.isEmpty && seen.allSatisfy { $0.origin == origin }, "\(name): \(seen.map(\.origin))")
            let last = try #require(seen.last)
            #expect(last.latents.count == 4 * 16 * 16 && last.latents.allSatisfy(\.isFinite), "\(name)")
        }
    }

    @Test("DDIM with set_alpha_to_one: the last step's estimate decodes to exactly the final images")
    func decodePreviewAtLastStep() throws {
        let fm = FileManager.default
        let copy = fm.temporaryDirectory.appendingPathComponent("demo-alpha-one-\(UUID().uuidString)")
        try fm.copyItem(at: Self.demoFolder, to: copy)
        defer { try? fm.removeItem(at: copy) }
        let config = copy.appendingPathComponent("scheduler/scheduler_config.json")
        let text = try String(contentsOf: config, encoding: .utf8)
        #expect(text.contains("\"set_alpha_to_one\": false"))
        try text.replacingOccurrences(of: "\"set_alpha_to_one\": false", with: "\"set_alpha_to_one\": true")
            .write(to: config, atomically: true, encoding: .utf8)
        let pipeline = try DiffusionPipeline(folder: copy)
        var last: LatentPreviewSource?
        let result = try pipeline.generate(Self.request()) { p in last = p.preview; return true }
        let preview = try pipeline.decodePreview(try #require(last))
        // The last DDIM step is 1 * x0 + 0 * eps when the final alpha is 1: the same latents.
        #expect(preview == result.images)
    }

    @Test("The stock demo (final alpha = alphas_cumprod[0] < 1): the last estimate decodes within 8/255 of the final images")
    func decodePreviewStock() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var last: LatentPreviewSource?
        let result = try pipeline.generate(Self.request()) { p in last = p.preview; return true }
        let preview = try pipeline.decodePreview(try #require(last))
        #expect(preview.count == 1 && preview[0].width == 64 && preview[0].height == 64)
        let diff = zip(preview[0].pixels, result.images[0].pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        // The last step adds sqrt(1 - alphas_cumprod[0]) (about 0.006 here) times the noise
        // estimate to x0: a few levels at most after decoding (5/255 measured).
        #expect(diff <= 8, "max difference \(diff)/255")
        #expect(diff > 0, "differs from the final images only through the final alpha; equal means the test proves nothing new")
    }

    @Test("Cancelling hands back the current estimate's images when asked, and nothing otherwise")
    func partialOnCancel() throws {
        let pipeline = try DiffusionPipeline(folder: Self.demoFolder)
        var atStop: LatentPreviewSource?
        do {
            _ = try pipeline.generate(Self.request(steps: 6), partialOnCancel: true) { p in
                atStop = p.preview
                return p.step < 2
            }
            Issue.record("generate did not stop")
        } catch let cancelled as GenerationCancelled {
            #expect(cancelled.completedSteps == 2)
            let partial = try #require(cancelled.partial)
            #expect(partial.images.count == 1 && partial.images[0].width == 64)
            #expect(partial.timings.steps == 2)
            #expect(partial.images == (try pipeline.decodePreview(try #require(atStop))))
        }
        do {
            _ = try pipeline.generate(Self.request(steps: 6)) { $0.step < 2 }
            Issue.record("generate did not stop")
        } catch let cancelled as GenerationCancelled {
            #expect(cancelled.partial == nil)
            #expect(cancelled.description == "generation cancelled after 2 step(s)")
        }
    }
}
