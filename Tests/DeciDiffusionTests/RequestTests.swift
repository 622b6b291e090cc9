import DeciDiffusion
import Testing

@Suite("Generation request validation")
struct RequestTests {
    let deci = PipelineDefaults.deciDiffusion(size: 512)

    @Test func defaultsFillIn() throws {
        let r = try GenerationRequest(prompt: "a cat").resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11)
        #expect(r.steps == 30 && r.guidanceScale == 7.5 && r.guidanceRescale == 0.7 && r.width == 512 && r.height == 512)
        #expect(r.negativePrompts == [""] && r.doClassifierFreeGuidance)
    }

    @Test func rejectsBadValues() {
        func error(_ edit: (inout GenerationRequest) -> Void) -> String? {
            var req = GenerationRequest(prompt: "a cat")
            edit(&req)
            do {
                _ = try req.resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11)
                return nil
            } catch { return error.description }
        }
        #expect(error { $0.width = 500 }?.contains("width: 500 is not a positive multiple of 64") == true)
        #expect(error { $0.height = 0 }?.contains("height: 0") == true)
        #expect(error { $0.steps = 0 }?.contains("steps: 0") == true)
        #expect(error { $0.steps = 100_000 }?.contains("steps: 100000") == true)
        #expect(error { $0.guidanceScale = .nan }?.contains("guidance scale") == true)
        #expect(error { $0.guidanceRescale = 1.5 }?.contains("guidance rescale: 1.5") == true)
        #expect(error { $0.clipSkip = 12 }?.contains("clip skip: 12") == true)
        #expect(error { $0.prompts = [] }?.contains("prompt") == true)
        #expect(error { $0.negativePrompts = ["a", "b"] }?.contains("negative prompt: got 2 for 1") == true)
        #expect(error { $0.imagesPerPrompt = 0 }?.contains("images per prompt") == true)
        #expect(error { $0.width = 640; $0.height = 384 } == nil)
    }

    @Test func guidanceOffAtScaleOne() throws {
        var req = GenerationRequest(prompt: "a cat")
        req.guidanceScale = 1
        #expect(try !req.resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11).doClassifierFreeGuidance)
    }
}
