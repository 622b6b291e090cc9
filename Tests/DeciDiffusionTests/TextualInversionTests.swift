// Textual inversion against diffusers' load_textual_inversion (tools/make_ti_fixtures.py): the
// three containers, their tokens in prompts and negative prompts, the ids and the images.
import DeciDiffusion
import DeciModels
import DeciWeights
import Foundation
import Testing
import TestSupport

struct TICase: Decodable, Sendable, CustomStringConvertible {
    var name = ""
    let prompts: [String]
    let negative_prompts: [String]
    let steps: Int
    let seed: UInt64
    let guidance_scale: Double
    let guidance_rescale: Double
    let token_ids: [[Int32]]
    var description: String { name }

    enum CodingKeys: String, CodingKey { case prompts, negative_prompts, steps, seed, guidance_scale, guidance_rescale, token_ids }

    static let root = FixturePaths.url("ti")
    static let all: [TICase] = namedFixtureCases("ti/cases.json") { $0.name = $1 }

    var request: GenerationRequest {
        var r = GenerationRequest(prompts: prompts, negativePrompts: negative_prompts)
        (r.width, r.height, r.steps, r.seed, r.guidanceScale, r.guidanceRescale) = (64, 64, steps, seed, guidance_scale, guidance_rescale)
        return r
    }
}

@Suite("Textual inversion parity")
struct TextualInversionTests {
    /// The deci fixture with the three embeddings loaded in the reference's order.
    func pipeline() throws -> DiffusionPipeline {
        let folder = try PipelineFixtures.materialize("deci")
        defer { PipelineFixtures.removeCopy(folder) }
        let pipe = try DiffusionPipeline(folder: folder)
        for file in ["shapeti", "kohyaemb", "learned_embeds"] {
            try pipe.loadTextualInversion(path: TICase.root.appendingPathComponent("\(file).safetensors").path)
        }
        return pipe
    }

    @Test func casesArePresent() { #expect(TICase.all.count >= 2) }

    @Test(arguments: TICase.all)
    func idsAndImages(_ c: TICase) throws {
        let pipe = try pipeline()
        #expect(pipe.textualInversions.map(\.name) == ["shapeti", "kohyaemb", "<cat-toy>"])
        #expect(pipe.textualInversions.map(\.count) == [2, 3, 1])
        for (prompt, want) in zip(c.prompts, c.token_ids) { #expect(pipe.tokenizer.tokenize(prompt) == want, "\(prompt)") }
        let result = try pipe.generate(c.request)
        let file = try SafeTensorsFile(path: TICase.root.appendingPathComponent("expected/\(c.name).safetensors").path)
        let want = try #require(file.tensors.first { $0.name == "images" }).floats()
        let cmp = compare(result.pixels, want)
        print("textual inversion \(c.name): \(cmp)")
        #expect(cmp.maxAbsDiff <= PipelineParityTests.f32MaxDiff, "\(c.name): \(cmp)")
        // The embedding matters: the same request without it is far off.
        let plain = try PipelineFixtures.pipeline("deci").generate(c.request)
        #expect(compare(plain.pixels, want).maxAbsDiff > 100 * max(cmp.maxAbsDiff, 1e-6))
    }

    @Test func weightedPromptsUseTheTokensToo() throws {
        let pipe = try pipeline()
        var req = GenerationRequest(prompt: "a photo of (kohyaemb:1.3) on grass", negativePrompt: "[shapeti]")
        (req.width, req.height, req.steps, req.seed) = (64, 64, 2, 1)
        req.promptWeighting = .a1111
        let states = try pipe.weightedStates(["(kohyaemb:1.3)"], clipSkip: 0)
        #expect(states.shape == [1, 77, 32])
        #expect(try pipe.generate(req).images.count == 1)
    }

    @Test func refusals() throws {
        let pipe = try pipeline()
        // The same token twice, a pickle file, and a file that is no embedding.
        #expect(throws: (any Error).self) { try pipe.loadTextualInversion(path: TICase.root.appendingPathComponent("kohyaemb.safetensors").path) }
        let pt = FileManager.default.temporaryDirectory.appendingPathComponent("emb-\(UUID().uuidString).pt")
        try Data([0x80, 0x02]).write(to: pt)
        defer { try? FileManager.default.removeItem(at: pt) }
        do {
            try pipe.loadTextualInversion(path: pt.path)
            Issue.record("a pickle file was accepted")
        } catch {
            #expect("\(error)".contains("arbitrary code"))
        }
        #expect(throws: TextualInversionError.self) {
            try pipe.loadTextualInversion(path: LoRACase.root.appendingPathComponent("deci_kohya.safetensors").path)
        }
        // Width 32 vectors do not fit a 768-wide encoder, named as such.
        let wide = FileManager.default.temporaryDirectory.appendingPathComponent("wide-\(UUID().uuidString).safetensors")
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        try w.add("emb_params", floats: [Float](repeating: 0.1, count: 2 * 40), shape: [2, 40])
        try w.write(to: wide.path)
        defer { try? FileManager.default.removeItem(at: wide) }
        #expect(throws: TextualInversionError.self) { try pipe.loadTextualInversion(path: wide.path) }
    }
}
