// LoRAs through the service, as A1111 clients send them: `<lora:NAME:SCALE>` tags in the prompt
// (and the `loras` list), resolved in the LoRA folder and switched in place between jobs.
import DeciImage
import DeciWeights
import Foundation
import Testing

@testable import DeciDiffusion

@Suite struct ServiceLoRATests {
    @Test func tagsSwitchLoRAsBetweenJobs() async throws {
        let folder = try PipelineFixtures.materialize("deci")
        defer { PipelineFixtures.removeCopy(folder) }
        var config = ServiceConfiguration()
        config.loraDirectory = LoRACase.root
        let service = GenerationService(catalog: try ModelCatalog(folder: folder), configuration: config)
        defer { service.shutdown() }
        let c = try #require(LoRACase.all.first { $0.name == "deci_kohya" })
        func run(_ prompt: String, loras: [LoRAReference] = []) async throws -> [UInt8] {
            var request = c.generationRequest
            request.prompts = [prompt]
            let job = try service.submit(JobSpec(request: request, seed: c.entry.seed, loras: loras))
            let done = try await service.waitUntilFinished(job.id)
            #expect(done.status == .succeeded, "\(done.error ?? "")")
            return try ImageFile.decode(service.png(job.id, index: 0)).image.pixels
        }
        let prompt = c.request.prompts[0]
        let file = try SafeTensorsFile(path: LoRACase.root.appendingPathComponent("expected/deci_kohya.safetensors").path)
        let want = try #require(file.tensors.first { $0.name == "images" }).floats().map { UInt8(($0 * 255).rounded()) }
        let tagged = try await run(prompt + " <lora:deci_kohya:0.8>")
        #expect(zip(tagged, want).allSatisfy { abs(Int($0) - Int($1)) <= 1 }, "the tagged job's image is the LoRA reference's")
        let listed = try await run(prompt, loras: [LoRAReference(name: "deci_kohya", textEncoderMultiplier: 0.8)])
        #expect(listed == tagged)
        let bare = try await run(prompt)
        let base = try PipelineFixtures.pipeline("deci").generate(c.generationRequest).images[0].pixels
        #expect(bare == base, "a job without LoRAs after one with them gets the base model")
        var request = c.generationRequest
        request.prompts = [prompt + " <lora:no_such_lora:1>"]
        let missing = try service.submit(JobSpec(request: request, seed: 1))
        let failed = try await service.waitUntilFinished(missing.id)
        #expect(failed.status == .failed && (failed.error ?? "").contains("no_such_lora"))
        let escape = try service.submit(JobSpec(request: c.generationRequest, seed: 1, loras: [LoRAReference(name: "../x")]))
        #expect(try await service.waitUntilFinished(escape.id).status == .failed)
    }
}
