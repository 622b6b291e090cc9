import DeciDiffusion
import DeciImage
import Testing

@Suite("Generation request validation")
struct RequestTests {
    let deci = PipelineDefaults.deciDiffusion(size: 512)

    @Test func defaultsFillIn() throws {
        let r = try GenerationRequest(prompt: "a cat").resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11)
        #expect(r.steps == 30 && r.guidanceScale == 7.5 && r.guidanceRescale == 0.7 && r.width == 512 && r.height == 512)
        #expect(r.negativePrompts == [""] && r.doClassifierFreeGuidance)
    }

    @Test func imageModesDefaultToNoRescale() throws {
        var req = GenerationRequest(prompt: "a cat")
        req.initImage = try RGBImage(width: 64, height: 64, red: 128, green: 128, blue: 128)
        #expect(try req.resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11).guidanceRescale == 0)
        req.mask = req.initImage
        #expect(try req.resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11).guidanceRescale == 0)
        req.guidanceRescale = 0.5
        #expect(try req.resolved(defaults: deci, sizeMultiple: 64, maxTextEncoderSkip: 11).guidanceRescale == 0.5)
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

@Suite("Generation request modes")
struct RequestModeTests {
    let sd = PipelineDefaults.stableDiffusion(size: 512)

    @Test func strengthDefaultsFollowDiffusers() throws {
        var req = GenerationRequest(prompt: "a cat")
        #expect(try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11).mode == .textToImage)
        #expect(try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11).strength == 1)
        req.initImage = try RGBImage(width: 64, height: 48)
        let img2img = try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11)
        #expect(img2img.mode == .imageToImage && img2img.strength == 0.8 && img2img.width == 64 && img2img.height == 48)
        req.mask = try RGBImage(width: 64, height: 48)
        let inpaint = try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11)
        #expect(inpaint.mode == .inpainting && inpaint.strength == 1)
        req.strength = 0.3
        #expect(try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11).strength == 0.3)
        for bad in [0, -0.1, 1.5, .nan] {
            req.strength = bad
            #expect(throws: RequestError.self) { try req.resolved(defaults: sd, sizeMultiple: 8, maxTextEncoderSkip: 11) }
        }
    }
}
