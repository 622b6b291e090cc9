import DeciDiffusion
import DeciImage
import Foundation
import Testing

/// A thread-safe list for callback observations.
final class Recorder<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [T] = []
    func append(_ x: T) { lock.lock(); items.append(x); lock.unlock() }
    var all: [T] { lock.lock(); defer { lock.unlock() }; return items }
}

func parityCase(_ name: String) throws -> ParityCase {
    guard let c = ParityCase.all.first(where: { $0.name == name }) else { throw FixtureError("no case \(name) in cases.json") }
    return c
}

@Suite("Generation behaviour")
struct GenerationTests {
    func smallDeciRequest(steps: Int) -> GenerationRequest {
        var r = GenerationRequest(prompt: "a cat", negativePrompt: "a dog")
        r.width = 64
        r.height = 64
        r.steps = steps
        r.seed = 1
        return r
    }

    @Test func progressIsReportedAfterEveryStep() throws {
        let pipe = try PipelineFixtures.pipeline("deci")
        let seen = Recorder<StepProgress>()
        let result = try pipe.generate(smallDeciRequest(steps: 4)) { p in
            seen.append(p)
            return true
        }
        let steps = seen.all
        #expect(steps.map(\.step) == [1, 2, 3, 4] && steps.allSatisfy { $0.totalSteps == 4 })
        // DeciDiffusion's DDIM, trailing spacing: round(arange(1000, 0, -1000/4)) - 1.
        #expect(steps.map(\.timestep) == [999, 749, 499, 249])
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0.elapsed <= $1.elapsed })
        #expect(result.timings.steps == 4 && result.images.count == 1)
        #expect(result.sampler == "DDIMScheduler")
    }

    @Test func returningFalseCancelsAfterThatStep() throws {
        let pipe = try PipelineFixtures.pipeline("deci")
        let seen = Recorder<Int>()
        #expect(throws: GenerationCancelled.self) {
            _ = try pipe.generate(smallDeciRequest(steps: 5)) { p in
                seen.append(p.step)
                return p.step < 2
            }
        }
        #expect(seen.all == [1, 2])
        do {
            _ = try pipe.generate(smallDeciRequest(steps: 5)) { _ in false }
            Issue.record("not cancelled")
        } catch let e as GenerationCancelled {
            #expect(e.completedSteps == 1 && e.description.contains("after 1 step"))
        }
    }

    @Test func imageToImageRunsTheTruncatedSchedule() throws {
        let c = try parityCase("deci_img2img")
        var req = try c.request()
        req.steps = 10
        req.strength = 0.35  // int(10 * 0.35) = 3 steps: the last three of the 10-step schedule
        let seen = Recorder<StepProgress>()
        _ = try PipelineFixtures.pipeline("deci").generate(req) { seen.append($0); return true }
        #expect(seen.all.map(\.timestep) == [299, 199, 99] && seen.all.last?.totalSteps == 3)
    }

    /// The parity fixtures discriminate: a different seed, the prompts or negative prompts in
    /// another order, or another guidance scale each move the images well past the parity test's
    /// f32 bound.
    @Test func fixturesAreSensitiveToSeedAndPromptOrder() throws {
        let c = try parityCase("sd_inpaint_pndm")
        let pipe = try PipelineFixtures.pipeline(c.pipeline)
        let want = try c.expected().floats
        var edits: [(String, (inout GenerationRequest) -> Void)] = [
            ("seed + 1", { $0.seed += 1 }),
            ("prompts swapped", { $0.prompts.reverse() }),
            ("negative prompts swapped", { $0.negativePrompts?.reverse() }),
        ]
        edits.append(("guidance 7.5 -> 7", { $0.guidanceScale = 7 }))
        for (label, edit) in edits {
            var req = try c.request()
            edit(&req)
            let got = try pipe.generate(req).pixels
            let maxDiff = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            #expect(Double(maxDiff) > 2 * PipelineParityTests.f32MaxDiff, "\(label): max diff only \(maxDiff)")
        }
    }

    @Test func requestsAreCheckedAgainstTheModel() throws {
        let deci = try PipelineFixtures.pipeline("deci")
        let inpaint = try PipelineFixtures.pipeline("sd_inpaint")
        let image = try RGBImage(width: 64, height: 64, red: 200)
        func message(_ pipe: DiffusionPipeline, _ edit: (inout GenerationRequest) -> Void) -> String? {
            var req = GenerationRequest(prompt: "a cat")
            edit(&req)
            return errorText { _ = try pipe.resolve(req) }
        }
        #expect(message(deci) { $0.width = 96 }?.contains("width: 96 is not a positive multiple of 64") == true)
        #expect(message(inpaint) { _ in }?.contains("inpainting model (9 input channels)") == true)
        #expect(message(inpaint) { $0.initImage = image }?.contains("inpainting model") == true)
        #expect(message(inpaint) { $0.initImage = image; $0.mask = image } == nil)
        #expect(message(deci) { $0.scheduler = "euler b" }?.contains("euler b") == true)
        #expect(message(deci) { $0.initImage = image; $0.steps = 10; $0.strength = 0.05 }?.contains("leaves no denoising step") == true)
        #expect(message(deci) { $0.strength = 0.5 }?.contains("only meaningful with an init image") == true)
        #expect(message(deci) { $0.mask = image }?.contains("needs an init image") == true)
        // diffusers' defaults: strength 0.8 for image-to-image, 1 for inpainting; size from the image.
        var req = GenerationRequest(prompt: "a cat")
        req.initImage = try RGBImage(width: 130, height: 200, red: 1)
        #expect(try deci.resolve(req).strength == 0.8)
        #expect(try deci.resolve(req).width == 128 && deci.resolve(req).height == 192)
        req.mask = image
        #expect(try deci.resolve(req).strength == 1 && deci.resolve(req).mode == .inpainting)
    }

    @Test func batchOrderIsPromptMajor() throws {
        // Two prompts x two images: image i belongs to prompt i / 2, as diffusers orders them
        // (`repeat(1, n, 1).view(...)`), unconditional states first.
        let pipe = try PipelineFixtures.pipeline("sd")
        var req = GenerationRequest(prompts: ["a cat", "a dog"], negativePrompts: ["x", "y"])
        req.imagesPerPrompt = 2
        let resolved = try pipe.resolve(req)
        let states = try #require(pipe.textConditioning(for: resolved).batched).toArray()
        let per = states.count / 8
        func row(_ i: Int) -> [Float] { Array(states[(i * per)..<((i + 1) * per)]) }
        let single = try #require(pipe.textConditioning(for: pipe.resolve(GenerationRequest(prompts: ["x", "y", "a cat", "a dog"]))).batched).toArray()
        func singleRow(_ i: Int) -> [Float] { Array(single[(i * per)..<((i + 1) * per)]) }
        // [x, x, y, y, cat, cat, dog, dog] in the guided batch; `single` (no negatives given) holds
        // the four texts as conditional states in its second half.
        #expect(row(0) == row(1) && row(2) == row(3) && row(4) == row(5) && row(6) == row(7) && row(0) != row(2))
        // Across batch sizes the encoder's matmuls may round differently: compare to 1e-5.
        func close(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 } }
        #expect(close(row(0), singleRow(4)) && close(row(2), singleRow(5)) && close(row(4), singleRow(6)) && close(row(6), singleRow(7)))
        #expect(!close(row(4), singleRow(7)))
    }
}

@Suite("Generation: state between runs")
struct StateBetweenRunsTests {
    /// A pipeline keeps nothing from one generation that changes the next: many runs with other
    /// prompts in between give the same image as the first run (a cache keyed by an object's
    /// address would see a freed text-state tensor's address reused and return stale keys/values).
    @Test func runsDoNotLeakIntoEachOther() throws {
        let pipe = try PipelineFixtures.pipeline("sd")
        func request(_ prompt: String) -> GenerationRequest {
            var r = GenerationRequest(prompt: prompt, negativePrompt: "")
            r.width = 64
            r.height = 64
            r.steps = 2
            r.seed = 3
            return r
        }
        let reference = try pipe.generate(request("a red house")).pixels
        var mismatches = 0
        for i in 0..<6 {
            let other = try pipe.generate(request("prompt number \(i)")).pixels
            #expect(other != reference)
            let again = try pipe.generate(request("a red house")).pixels
            if again != reference { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) of 6 repeated runs differed from the first")
    }
}
