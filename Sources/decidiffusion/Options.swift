import ArgumentParser
import DeciDiffusion
import DeciTensor
import Foundation

extension Precision: ExpressibleByArgument {}
extension PromptWeighting: ExpressibleByArgument {}

struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Checkpoint folder or Hugging Face repo id (default: the bundled demo model).")
    var model: String?

    @Option(help: "Compute precision: f32 or bf16.")
    var precision: Precision = .f32

    @Option(help: "Weight file variant to prefer, e.g. fp16.")
    var variant: String?

    @Option(help: "CPU threads (0 = all cores).")
    var threads = 0

    @Option(name: .customLong("lora"), help: ArgumentHelp(
        "A LoRA to merge at load, FILE[:SCALE] (repeatable; scale 1 by default).",
        discussion: "kohya-ss (lora_unet_*, lora_te_*, with alpha) and diffusers/PEFT (unet.*, text_encoder.*; lora_A/lora_B, lora.down/lora.up) safetensors files, LoCon 3x3 convolutions included; W += scale * alpha/rank * up @ down in float32 before the weights are packed."))
    var lora: [String] = []

    @Option(help: "Folder where A1111 prompt tags <lora:NAME:SCALE> (or <lora:NAME:TE:UNET>) find NAME.safetensors; the tags are removed from the prompt. Without it, tags are plain text.")
    var loraDir: String?

    @Flag(help: "LoRA keys that match no module of the model are warnings instead of errors.")
    var loraLenient = false

    @Option(name: .customLong("embedding"), help: ArgumentHelp(
        "A textual-inversion embedding to load, FILE[=TOKEN] (repeatable).",
        discussion: ".safetensors with string_to_param.* or emb_params (token: the file name without extension, as A1111) or diffusers' learned_embeds.safetensors (token: its key); the token then works in prompts and negative prompts. Pickle .pt/.ckpt files are refused (they can run code): convert them to safetensors on a machine you trust."))
    var embedding: [String] = []

    /// The checkpoint folder: --model, or the demo model next to the sources / executable.
    func resolveFolder() throws -> URL {
        if let model { return try CheckpointLayout.locate(model) }
        if let demo = DemoModel.locate() { return demo }
        throw ValidationError("no --model given and the bundled demo model (Models/demo) was not found; set DECI_DEMO_MODEL or pass --model")
    }

    /// The models a server or worker offers: every checkpoint in `modelsDir`, else the one model.
    func catalog(modelsDir: String?) throws -> ModelCatalog {
        if let modelsDir {
            return try ModelCatalog(modelsDirectory: URL(fileURLWithPath: modelsDir), precision: precision, variant: variant)
        }
        return try ModelCatalog(folder: resolveFolder(), precision: precision, variant: variant)
    }

    /// `--lora` options and the prompt tags found in `tagged` (their prompts returned without them).
    func loraReferences(_ requests: inout [GenerationRequest]) throws -> [LoRAReference] {
        var references = try lora.map { try LoRAReference.parse(option: $0) }
        guard loraDir != nil else { return references }
        var tagged: [LoRAReference]?
        for i in requests.indices {
            var found: [LoRAReference] = []
            for (k, prompt) in requests[i].prompts.enumerated() {
                let extracted = try LoRAReference.extractTags(from: prompt)
                requests[i].prompts[k] = extracted.prompt
                found += extracted.loras
                for tag in extracted.ignored { FileHandle.standardError.write("warning: prompt tag \(tag) is not a LoRA; removed\n") }
            }
            // One load serves every request of a run, so every prompt must ask for the same LoRAs.
            if let tagged, tagged != found { throw ValidationError("prompts ask for different <lora:...> tags; one run loads one set") }
            tagged = found
        }
        references += tagged ?? []
        return references
    }

    func loadPipeline(quiet: Bool, loras references: [LoRAReference] = []) throws -> DiffusionPipeline {
        Backend.threads = threads
        let folder = try resolveFolder()
        if !quiet { FileHandle.standardError.write("loading \(folder.path) (\(precision.rawValue))...\n") }
        let loras = try LoRAReference.load(references, directory: loraDir.map { URL(fileURLWithPath: $0) }, lenient: loraLenient)
        let pipeline = try DiffusionPipeline(folder: folder, precision: precision, variant: variant, loras: loras)
        for w in loras?.warnings ?? [] { FileHandle.standardError.write("warning: \(w)\n") }
        for e in embedding { try pipeline.loadTextualInversion(spec: e) }
        if !quiet {
            var line = String(format: "loaded in %.2f s: %@", pipeline.loadSeconds, pipeline.layout.denoiser.rawValue)
            if !pipeline.layout.skipped.isEmpty { line += "; not run: " + pipeline.layout.skipped.joined(separator: ", ") }
            FileHandle.standardError.write(line + "\n")
        }
        return pipeline
    }
}

/// Finds the bundled demo model without any configuration.
enum DemoModel {
    static func locate() -> URL? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let e = env["DECI_DEMO_MODEL"] { candidates.append(URL(fileURLWithPath: e)) }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Models/demo"))
        // <repo>/.build/<config>/decidiffusion -> <repo>/Models/demo
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("Models/demo"))
            candidates.append(dir.appendingPathComponent("share/decidiffusion/demo"))
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("model_index.json").path) }
    }
}

struct SamplingOptions: ParsableArguments {
    @Argument(help: "The prompt; several prompts make one batch (one image each, times --num-images), as diffusers does with a list.")
    var prompts: [String] = []

    @Option(help: ArgumentHelp(
        "A file of prompts, one job per line (A1111's \"prompts from file\").",
        discussion: "A line is a prompt, or shell-quoted options overriding the command's for that line: --prompt, --negative_prompt, --seed, --steps, --cfg_scale, --width, --height, --sampler_name, --batch_size. Blank lines are skipped. Images are numbered across the whole file."))
    var promptFile: String?

    @Option(name: [.customShort("N"), .customLong("negative-prompt")], help: "What to steer away from.")
    var negativePrompt: String?

    @Option(name: [.short, .customLong("num-images")], help: "Images to generate for the prompt.")
    var numImages = 1

    @Option(name: .shortAndLong, help: "Image width (default: the model's).") var width: Int?
    @Option(name: [.customShort("H"), .long], help: "Image height (default: the model's).") var height: Int?

    @Option(name: .shortAndLong, help: "Denoising steps (default: 30 for DeciDiffusion, 50 for SD).")
    var steps: Int?

    @Option(name: [.customLong("cfg"), .customLong("guidance-scale")], help: "Classifier-free guidance scale (default 7.5; ≤ 1 turns guidance off).")
    var guidanceScale: Double?

    @Option(help: "Guidance rescale phi (default: 0.7 for DeciDiffusion text-to-image; 0 for SD and for img2img/inpaint, as diffusers).")
    var guidanceRescale: Double?

    @Option(help: "Scheduler by name: ddim, pndm, euler, euler_a, heun, lms, \"DPM++ 2M Karras\", dpm++2m_sde, unipc, lcm, ... (default: the checkpoint's).")
    var scheduler: String?

    @Option(help: "Random seed (default: a random one, printed).")
    var seed: UInt64?

    @Option(help: "DDIM eta.") var eta = 0.0
    @Option(help: "Text-encoder layers to skip from the end (A1111's clip skip minus one).") var clipSkip = 0

    @Option(help: ArgumentHelp(
        "How prompts are read: none or a1111 (default none).",
        discussion: "none: the text as diffusers encodes it, cut at 77 tokens with a warning (same seed, same image as diffusers). a1111: AUTOMATIC1111's syntax, (word) x1.1, ((word)) x1.21, [word] /1.1, (word:1.3), \\( \\) escapes, BREAK to start a new chunk; prompts of any length in 75-token chunks; the A1111 API uses it."))
    var promptWeighting: PromptWeighting = .none

    @Flag(help: "With --prompt-weighting a1111, when prompt and negative prompt have different chunk counts: pad the shorter with empty-prompt chunks and batch them (A1111's option of that name) instead of two denoiser calls.")
    var padCondUncond = false

    @Option(name: .shortAndLong, help: "Output PNG file, or a folder (numbered files). A batch numbers the files.")
    var output = "output.png"

    @Flag(help: "Decode (and encode) with the VAE in overlapping tiles (large images, bounded memory).")
    var vaeTiling = false

    @Flag(name: .shortAndLong, help: "Only print the written paths.")
    var quiet = false

    func validate() throws {
        if prompts.isEmpty && promptFile == nil { throw ValidationError("give a prompt, or --prompt-file") }
        if !prompts.isEmpty && promptFile != nil { throw ValidationError("give either prompts or --prompt-file, not both") }
    }

    /// The requests to run: the positional prompts as one batch, or one per prompts-file line.
    func requests(seed resolvedSeed: UInt64) throws -> [GenerationRequest] {
        let base = request(seed: resolvedSeed)
        guard let promptFile else { return [base] }
        let text: String
        do { text = try String(contentsOfFile: promptFile, encoding: .utf8) } catch {
            throw ValidationError("--prompt-file \(promptFile): cannot read it: \(error.localizedDescription)")
        }
        let entries = try PromptFile.parse(text, path: promptFile)
        guard !entries.isEmpty else { throw ValidationError("--prompt-file \(promptFile): no prompts in it") }
        return entries.map { $0.applied(to: base) }
    }

    func request(seed resolvedSeed: UInt64) -> GenerationRequest {
        var r = GenerationRequest(prompts: prompts.isEmpty ? [""] : prompts, negativePrompts: negativePrompt.map { [$0] })
        r.imagesPerPrompt = numImages
        r.width = width
        r.height = height
        r.steps = steps
        r.guidanceScale = guidanceScale
        r.guidanceRescale = guidanceRescale
        r.scheduler = scheduler
        r.seed = resolvedSeed
        r.eta = eta
        r.clipSkip = clipSkip
        r.vaeTiling = vaeTiling
        r.promptWeighting = promptWeighting
        r.padCondUncond = padCondUncond
        return r
    }
}

extension FileHandle {
    func write(_ s: String) { write(Data(s.utf8)) }
}
