// A1111 prompt weighting end to end: the engine's weighted, chunked encodings and its images for
// the requests of Fixtures/prompts/cases.json against the Python reference's encodings and the
// images diffusers made from them (tools/make_prompt_fixtures.py).
import DeciDiffusion
import DeciTensor
import DeciWeights
import Foundation
import Testing
import TestSupport

struct PromptWeightingCase: Decodable, Sendable, CustomStringConvertible {
    var name = ""
    let pipeline: String
    let prompts: [String]
    let negativePrompts: [String]
    let imagesPerPrompt: Int
    let steps: Int
    let seed: UInt64
    let guidanceScale: Double
    let guidanceRescale: Double
    let clipSkip: Int?
    let padCondUncond: Bool?

    var description: String { name }

    enum CodingKeys: String, CodingKey {
        case pipeline, prompts, steps, seed
        case negativePrompts = "negative_prompts", imagesPerPrompt = "images_per_prompt", guidanceScale = "guidance_scale"
        case guidanceRescale = "guidance_rescale", clipSkip = "clip_skip", padCondUncond = "pad_cond_uncond"
    }

    static let all: [PromptWeightingCase] = {
        guard let data = try? Data(contentsOf: FixturePaths.url("prompts/cases.json")),
              let dict = try? JSONDecoder().decode([String: PromptWeightingCase].self, from: data) else { return [] }
        return dict.map { var c = $0.value; c.name = $0.key; return c }.sorted { $0.name < $1.name }
    }()

    var request: GenerationRequest {
        var r = GenerationRequest(prompts: prompts, negativePrompts: negativePrompts)
        r.imagesPerPrompt = imagesPerPrompt
        (r.width, r.height, r.steps, r.seed) = (64, 64, steps, seed)
        (r.guidanceScale, r.guidanceRescale) = (guidanceScale, guidanceRescale)
        r.clipSkip = clipSkip ?? 0
        r.promptWeighting = .a1111
        r.padCondUncond = padCondUncond ?? false
        return r
    }

    func expected(_ tensor: String) throws -> (values: [Float], shape: [Int]) {
        let file = try SafeTensorsFile(path: FixturePaths.url("prompts/expected/\(name).safetensors").path)
        guard let t = file.tensors.first(where: { $0.name == tensor }) else { throw FixtureError("\(name): no \(tensor) tensor") }
        return (try t.floats(), t.shape)
    }
}

@Suite("A1111 prompt weighting parity")
struct PromptWeightingTests {
    @Test func casesArePresent() {
        #expect(PromptWeightingCase.all.count >= 6, "Fixtures/prompts/cases.json missing or unreadable")
    }

    /// The encodings: f32 rounding only (the encoder itself matches transformers to ~1e-6).
    @Test(arguments: PromptWeightingCase.all)
    func encodings(_ c: PromptWeightingCase) throws {
        let pipe = try PipelineFixtures.promptPipeline(c.pipeline)
        for (field, texts) in [("cond", c.prompts), ("uncond", c.negativePrompts)] {
            let want = try c.expected(field)
            let got = try pipe.weightedStates(texts, clipSkip: c.clipSkip ?? 0)
            #expect(got.shape == want.shape, "\(c.name) \(field): shape \(got.shape), want \(want.shape)")
            let cmp = compare(got.toArray(), want.values)
            print("prompt weighting \(c.name) \(field): \(cmp)")
            #expect(cmp.within(relative: 1e-5), "\(c.name) \(field): \(cmp)")
        }
    }

    /// The images: the usual f32 bounds of the pipeline parity tests.
    @Test(arguments: PromptWeightingCase.all)
    func images(_ c: PromptWeightingCase) throws {
        let pipe = try PipelineFixtures.promptPipeline(c.pipeline)
        let result = try pipe.generate(c.request)
        let want = try c.expected("images")
        try #require(result.pixels.count == want.values.count, "\(c.name): \(result.pixels.count) values, want \(want.values.count)")
        #expect(result.warnings.isEmpty, "\(c.name): a1111 weighting drops nothing, so no truncation warning: \(result.warnings)")
        let cmp = compare(result.pixels, want.values)
        print("prompt weighting images \(c.name): \(cmp)")
        #expect(cmp.maxAbsDiff <= PipelineParityTests.f32MaxDiff, "\(c.name): \(cmp)")
    }

    /// Without attention syntax and within 75 tokens, A1111's encoding is diffusers' (all weights
    /// 1 make mean restoration an identity), so both weightings give the same image.
    @Test func plainPromptMatchesNoneWeighting() throws {
        let pipe = try PipelineFixtures.promptPipeline("deci")
        var req = GenerationRequest(prompt: "a red circle on a blue background", negativePrompt: "blurry")
        (req.width, req.height, req.steps, req.seed) = (64, 64, 4, 3)
        let plain = try pipe.generate(req)
        req.promptWeighting = .a1111
        let weighted = try pipe.generate(req)
        let cmp = compare(weighted.pixels, plain.pixels)
        #expect(cmp.maxAbsDiff <= 1e-6, "\(cmp)")
    }

    /// Separate calls for contexts of different lengths equal the unbatched calls themselves;
    /// padding changes the result (extra keys take softmax mass).
    @Test func padCondUncondChangesTheImage() throws {
        let pipe = try PipelineFixtures.promptPipeline("deci")
        var req = GenerationRequest(prompt: String(repeating: "a red circle, ", count: 30), negativePrompt: "blurry")
        (req.width, req.height, req.steps, req.seed) = (64, 64, 3, 4)
        req.promptWeighting = .a1111
        let resolved = try pipe.resolve(req)
        let conditioning = try pipe.textConditioning(for: resolved)
        #expect(conditioning.batched == nil && conditioning.cond.shape[1] == 154 && conditioning.uncond?.shape[1] == 77)
        let separate = try pipe.generate(req)
        req.padCondUncond = true
        let padded = try pipe.textConditioning(for: try pipe.resolve(req))
        #expect(padded.batched?.shape == [2, 154, 32])
        let paddedImage = try pipe.generate(req)
        #expect(compare(separate.pixels, paddedImage.pixels).maxAbsDiff > 1e-4)
    }

    @Test func badWeightIsARequestError() throws {
        let pipe = try PipelineFixtures.promptPipeline("deci")
        var req = GenerationRequest(prompt: "a cat", negativePrompt: "(blurry:1.2.3)")
        req.promptWeighting = .a1111
        #expect(throws: RequestError.self) { try pipe.resolve(req) }
        req.promptWeighting = .none
        #expect(throws: Never.self) { try pipe.resolve(req) }
    }
}
