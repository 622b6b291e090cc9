// LoRA end to end: the engine's images with random-weight LoRA files merged at load against the
// images of the reference (PEFT's merge for U-Net-NAS, diffusers' load_lora_weights + fuse_lora for
// SD; tools/make_lora_fixtures.py), two at once included; plus how LoRAs are named and refused.
import DeciDiffusion
import DeciModels
import DeciWeights
import Foundation
import Testing
import TestSupport

struct LoRACase: Decodable, Sendable, CustomStringConvertible {
    struct Request: Decodable, Sendable {
        let prompts: [String]
        let negative_prompts: [String]
        let steps: Int
        let guidance_scale: Double
        let width: Int
        let height: Int
    }
    struct Entry: Decodable, Sendable {
        let pipeline: String
        /// `[[file stem, multiplier], ...]`.
        let loras: [[LoRAValue]]
        let seed: UInt64
    }
    enum LoRAValue: Decodable, Sendable {
        case name(String), multiplier(Float)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .name(s) } else { self = .multiplier(try c.decode(Float.self)) }
        }
    }
    struct File: Decodable { let request: Request; let cases: [String: Entry] }

    let name: String
    let entry: Entry
    let request: Request
    var description: String { name }

    static let root = FixturePaths.url("lora")
    static let all: [LoRACase] = {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("cases.json")),
              let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.cases.map { LoRACase(name: $0.key, entry: $0.value, request: file.request) }.sorted { $0.name < $1.name }
    }()

    var references: [LoRAReference] {
        entry.loras.compactMap { pair in
            guard pair.count == 2, case .name(let n) = pair[0], case .multiplier(let m) = pair[1] else { return nil }
            return LoRAReference(name: Self.root.appendingPathComponent("\(n).safetensors").path, textEncoderMultiplier: m)
        }
    }

    var generationRequest: GenerationRequest {
        var r = GenerationRequest(prompts: request.prompts, negativePrompts: request.negative_prompts)
        (r.width, r.height, r.steps, r.seed, r.guidanceScale) = (request.width, request.height, request.steps, entry.seed, request.guidance_scale)
        return r
    }
}

@Suite("LoRA parity")
struct LoRAParityTests {
    @Test func casesArePresent() { #expect(LoRACase.all.count >= 5, "Fixtures/lora/cases.json missing or unreadable") }

    func pipeline(_ name: String, _ references: [LoRAReference], lenient: Bool = false) throws -> DiffusionPipeline {
        let folder = try PipelineFixtures.materialize(name)
        defer { PipelineFixtures.removeCopy(folder) }
        return try DiffusionPipeline(folder: folder, loras: try LoRAReference.load(references, directory: nil, lenient: lenient))
    }

    /// The usual f32 image bounds; and the LoRA must matter (the image without it is far off).
    @Test(arguments: LoRACase.all)
    func images(_ c: LoRACase) throws {
        let pipe = try pipeline(c.entry.pipeline, c.references)
        let result = try pipe.generate(c.generationRequest)
        let file = try SafeTensorsFile(path: LoRACase.root.appendingPathComponent("expected/\(c.name).safetensors").path)
        let want = try #require(file.tensors.first { $0.name == "images" }).floats()
        let cmp = compare(result.pixels, want)
        print("LoRA parity \(c.name): \(cmp)")
        #expect(cmp.maxAbsDiff <= PipelineParityTests.f32MaxDiff, "\(c.name): \(cmp)")
        let base = try PipelineFixtures.pipeline(c.entry.pipeline).generate(c.generationRequest)
        let effect = compare(base.pixels, want)
        #expect(effect.maxAbsDiff > 100 * max(cmp.maxAbsDiff, 1e-6), "\(c.name): the LoRA barely changes the image (\(effect))")
    }

    /// A running pipeline changes LoRAs in place, without the checkpoint: loaded bare, then each
    /// set merged, removed and replaced gives the reference's images (and the bare image back).
    @Test func switchingLoRAsInPlace() throws {
        let cases = Dictionary(uniqueKeysWithValues: LoRACase.all.map { ($0.name, $0) })
        let (one, two) = (try #require(cases["deci_kohya"]), try #require(cases["deci_two"]))
        let folder = try PipelineFixtures.materialize("deci")
        let pipe = try DiffusionPipeline(folder: folder)
        PipelineFixtures.removeCopy(folder)
        func expected(_ c: LoRACase) throws -> [Float] {
            let file = try SafeTensorsFile(path: LoRACase.root.appendingPathComponent("expected/\(c.name).safetensors").path)
            return try #require(file.tensors.first { $0.name == "images" }).floats()
        }
        let bare = try pipe.generate(one.generationRequest).pixels
        for c in [one, two, one] {
            try pipe.setLoRAs(try LoRAReference.load(c.references, directory: nil, lenient: false))
            let cmp = compare(try pipe.generate(c.generationRequest).pixels, try expected(c))
            print("LoRA switched in place \(c.name): \(cmp)")
            #expect(cmp.maxAbsDiff <= PipelineParityTests.f32MaxDiff, "\(c.name): \(cmp)")
        }
        try pipe.setLoRAs(nil)
        #expect(compare(try pipe.generate(one.generationRequest).pixels, bare).maxAbsDiff == 0, "removing the LoRAs restores the base weights exactly")
        // Loaded with a LoRA: changing it needs the originals kept.
        let kept = try PipelineFixtures.materialize("deci")
        defer { PipelineFixtures.removeCopy(kept) }
        let loaded = try DiffusionPipeline(folder: kept, loras: try LoRASet(
            [LoRAApplication(file: try LoRAFile(path: LoRACase.root.appendingPathComponent("deci_peft.safetensors").path))], keepsOriginals: true))
        try loaded.setLoRAs(try LoRAReference.load(one.references, directory: nil, lenient: false))
        let cmp = compare(try loaded.generate(one.generationRequest).pixels, try expected(one))
        #expect(cmp.maxAbsDiff <= PipelineParityTests.f32MaxDiff, "\(cmp)")
    }

    @Test func unmatchedModulesAreAnErrorListingThem() throws {
        // An SD-1.x UNet LoRA does not fit U-Net-NAS: its module paths do not exist there.
        let sd = LoRAReference(name: LoRACase.root.appendingPathComponent("sd_kohya.safetensors").path)
        do {
            _ = try pipeline("deci", [sd])
            Issue.record("an SD LoRA loaded into U-Net-NAS")
        } catch {
            #expect("\(error)".contains("lora_unet_down_blocks_0_attentions_0"), "\(error)")
        }
        let lenient = try pipeline("deci", [sd], lenient: true)
        #expect(lenient.loras?.warnings.isEmpty == false)
    }

    @Test func promptTagsAndOptions() throws {
        let tags = try LoRAReference.extractTags(from: "a cat <lora:style_one:0.8>, <lora:two:1:0.5> <hypernet:x:1> <lora:three:te=0.3:unet=2> end <notatag")
        #expect(tags.prompt == "a cat ,    end <notatag")
        #expect(tags.loras == [LoRAReference(name: "style_one", textEncoderMultiplier: 0.8),
                               LoRAReference(name: "two", textEncoderMultiplier: 1, denoiserMultiplier: 0.5),
                               LoRAReference(name: "three", textEncoderMultiplier: 0.3, denoiserMultiplier: 2)])
        #expect(tags.ignored == ["<hypernet:x:1>"])
        #expect(try LoRAReference.parse(option: "/a/b:c.safetensors:0.7") == LoRAReference(name: "/a/b:c.safetensors", textEncoderMultiplier: 0.7))
        #expect(try LoRAReference.parse(option: "x.safetensors") == LoRAReference(name: "x.safetensors"))
        #expect(throws: RequestError.self) { try LoRAReference.extractTags(from: "<lora:x:abc>") }
        // Found by name in the folder; pickle files are refused, saying why.
        let found = try LoRAReference(name: "deci_kohya").locate(in: LoRACase.root)
        #expect(found.hasSuffix("deci_kohya.safetensors"))
        let pt = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString).pt")
        try Data([0x80, 0x02]).write(to: pt)
        defer { try? FileManager.default.removeItem(at: pt) }
        do {
            _ = try LoRAReference(name: pt.path).locate(in: nil)
            Issue.record("a pickle file was accepted")
        } catch {
            #expect("\(error)".contains("arbitrary code") && "\(error)".contains("safetensors"))
        }
    }
}
