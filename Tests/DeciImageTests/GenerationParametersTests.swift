import Testing
@testable import DeciImage

@Suite struct GenerationParametersTests {
    @Test func formatsLikeA1111() {
        let p = GenerationParameters(prompt: "a cat", negativePrompt: "dog", steps: 30, sampler: "DDIM", cfgScale: 7.5,
                                     seed: 42, width: 512, height: 768, model: "DeciDiffusion-v1-0",
                                     extra: [.init("Guidance rescale", "0.7")])
        #expect(p.text == "a cat\nNegative prompt: dog\nSteps: 30, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x768, Model: DeciDiffusion-v1-0, Guidance rescale: 0.7")
        var q = p
        q.negativePrompt = ""
        q.model = nil
        q.extra = []
        q.cfgScale = 7
        #expect(q.text == "a cat\nSteps: 30, Sampler: DDIM, CFG scale: 7.0, Seed: 42, Size: 512x768")
    }

    @Test func quotesValuesWithSeparators() {
        let p = GenerationParameters(prompt: "x", steps: 1, sampler: "Euler a", cfgScale: 1, seed: 0, width: 64, height: 64,
                                     model: "dir:name", extra: [.init("Note", "a, b\n\"c\"")])
        #expect(p.text.hasSuffix("Model: \"dir:name\", Note: \"a, b\\n\\\"c\\\"\""))
        #expect(GenerationParameters.parse(p.text) == p)
    }

    @Test func parsesMultilinePrompts() throws {
        let text = "line one\nline two\nNegative prompt: neg one\nneg two\nSteps: 20, Sampler: Euler a, CFG scale: 6, Seed: 18446744073709551615, Size: 640x448, Denoising strength: 0.75"
        let p = try #require(GenerationParameters.parse(text))
        #expect(p.prompt == "line one\nline two")
        #expect(p.negativePrompt == "neg one\nneg two")
        #expect(p.steps == 20 && p.sampler == "Euler a" && p.cfgScale == 6 && p.seed == .max)
        #expect(p.width == 640 && p.height == 448 && p.model == nil)
        #expect(p.extra == [.init("Denoising strength", "0.75")])
        #expect(GenerationParameters.parse("just a prompt") == nil)
        #expect(GenerationParameters.parse("p\nSteps: x, Sampler: a, CFG scale: 1, Seed: 1, Size: 1x1") == nil)
    }
}
