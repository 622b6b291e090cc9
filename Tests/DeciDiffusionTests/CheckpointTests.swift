import DeciDiffusion
import DeciModels
import Foundation
import Testing

/// Runs `body` on a fresh copy of fixture checkpoint `name`, removed afterwards.
func withCheckpointCopy<T>(_ name: String, _ body: (URL) throws -> T) throws -> T {
    let folder = try PipelineFixtures.materialize(name)
    defer { PipelineFixtures.removeCopy(folder) }
    return try body(folder)
}

/// The description of the error `body` throws, or nil when it does not throw.
func errorText(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return "\(error)"
    }
}

@Suite("Checkpoint folders")
struct CheckpointTests {
    @Test func deciDiffusionFolder() throws {
        let pipe = try PipelineFixtures.pipeline("deci")
        #expect(pipe.layout.denoiser == .unetNAS)
        #expect(pipe.denoiser is UNetNAS)
        #expect(pipe.layout.index?.className == "DeciDiffusionPipeline")
        // model_index.json lists a safety checker and feature extractor; unet/ holds only a config
        // (loading it would fail), as DeciDiffusion's unused SD UNet must be ignored.
        #expect(pipe.layout.skipped == ["feature_extractor", "safety_checker", "unet"])
        #expect(pipe.defaults == .deciDiffusion(size: 64))
        #expect(pipe.imageSizeMultiple == 64 && !pipe.isInpaintingModel)
    }

    @Test func stableDiffusionFolders() throws {
        let sd = try PipelineFixtures.pipeline("sd")
        #expect(sd.layout.denoiser == .unet2DCondition && sd.denoiser is UNet2DConditionModel)
        #expect(sd.layout.skipped.isEmpty, "null model_index entries are not components: \(sd.layout.skipped)")
        #expect(sd.defaults == .stableDiffusion(size: 64))
        #expect(sd.imageSizeMultiple == 16 && !sd.isInpaintingModel)
        let inpaint = try PipelineFixtures.pipeline("sd_inpaint")
        #expect(inpaint.isInpaintingModel && inpaint.denoiser.inChannels == 9)
    }

    @Test func listedComponentsWithoutFoldersAreSkipped() throws {
        try withCheckpointCopy("deci") { folder in
            for name in ["safety_checker", "feature_extractor"] {
                try FileManager.default.removeItem(at: folder.appendingPathComponent(name))
            }
            let layout = try CheckpointLayout(root: folder)
            #expect(layout.skipped == ["feature_extractor", "safety_checker", "unet"])
        }
    }

    @Test func flexibleUNetWinsOverUNet() throws {
        try withCheckpointCopy("sd") { folder in
            // An SD folder stays an SD folder ...
            #expect(try CheckpointLayout(root: folder).denoiser == .unet2DCondition)
            // ... until a flexible_unet/ appears.
            let fm = FileManager.default
            try fm.createDirectory(at: folder.appendingPathComponent("flexible_unet"), withIntermediateDirectories: false)
            let layout = try CheckpointLayout(root: folder)
            #expect(layout.denoiser == .unetNAS && layout.skipped == ["unet"])
        }
    }

    @Test func missingFoldersAreNamed() throws {
        for part in ["tokenizer", "text_encoder", "vae", "scheduler"] {
            try withCheckpointCopy("sd") { folder in
                try FileManager.default.removeItem(at: folder.appendingPathComponent(part))
                let message = errorText { _ = try DiffusionPipeline(folder: folder) }
                #expect(message?.contains("missing the \(part)/ folder") == true, "\(part): \(message ?? "no error")")
            }
        }
        try withCheckpointCopy("deci") { folder in
            for name in ["flexible_unet", "unet"] { try FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
            let message = errorText { _ = try CheckpointLayout(root: folder) }
            #expect(message?.contains("no denoiser folder (expected flexible_unet/ or unet/)") == true, "\(message ?? "no error")")
        }
    }

    @Test func missingWeightsNameTheComponent() throws {
        try withCheckpointCopy("sd") { folder in
            try FileManager.default.removeItem(at: folder.appendingPathComponent("vae/diffusion_pytorch_model.safetensors"))
            let message = errorText { _ = try DiffusionPipeline(folder: folder) } ?? "no error"
            #expect(message.contains("/vae") && message.contains("no usable weights"), "\(message)")
        }
        try withCheckpointCopy("deci") { folder in
            try FileManager.default.removeItem(at: folder.appendingPathComponent("flexible_unet/diffusion_pytorch_model.safetensors"))
            let message = errorText { _ = try DiffusionPipeline(folder: folder) } ?? "no error"
            #expect(message.contains("flexible_unet") && message.contains("no usable weights"), "\(message)")
        }
        try withCheckpointCopy("sd") { folder in
            try FileManager.default.removeItem(at: folder.appendingPathComponent("tokenizer/merges.txt"))
            let message = errorText { _ = try DiffusionPipeline(folder: folder) } ?? "no error"
            #expect(message.contains("tokenizer") && message.contains("merges.txt"), "\(message)")
        }
    }

    @Test func variantFilesLoad() throws {
        // sd/ stores its text encoder only as model.fp16.safetensors (fp16 values); asking for the
        // variant explicitly gives the same model as finding it without being asked.
        try withCheckpointCopy("sd") { folder in
            let explicit = try DiffusionPipeline(folder: folder, variant: "fp16")
            let implicit = try PipelineFixtures.pipeline("sd")
            let ids: [[Int32]] = [explicit.tokenizer.encode("a cat").ids]
            #expect(try explicit.textEncoder(ids).toArray() == implicit.textEncoder(ids).toArray())
        }
    }

    @Test func mismatchedTextWidthIsRejected() throws {
        try withCheckpointCopy("sd") { folder in
            let config = folder.appendingPathComponent("unet/config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any] ?? [:]
            json["cross_attention_dim"] = 48
            try JSONSerialization.data(withJSONObject: json).write(to: config)
            let message = errorText { _ = try DiffusionPipeline(folder: folder) } ?? "no error"
            #expect(message.contains("unet"), "\(message)")
        }
    }
}

@Suite("Model lookup: folders and the Hugging Face cache")
struct LocateTests {
    let fm = FileManager.default

    func tempDir() throws -> URL {
        let dir = fm.temporaryDirectory.appendingPathComponent("deci-hf-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `<cache>/models--Deci--DeciDiffusion-v1-0/snapshots/<rev>/` for each rev, and refs/main.
    func makeRepo(in cache: URL, revisions: [String], main: String?) throws -> URL {
        let repo = cache.appendingPathComponent("models--Deci--DeciDiffusion-v1-0")
        for rev in revisions {
            try fm.createDirectory(at: repo.appendingPathComponent("snapshots/\(rev)"), withIntermediateDirectories: true)
        }
        if let main {
            try fm.createDirectory(at: repo.appendingPathComponent("refs"), withIntermediateDirectories: true)
            try (main + "\n").write(to: repo.appendingPathComponent("refs/main"), atomically: true, encoding: .utf8)
        }
        return repo
    }

    @Test func findsTheSnapshotRefsMainNames() throws {
        let home = try tempDir()
        defer { try? fm.removeItem(at: home) }
        let repo = try makeRepo(in: home.appendingPathComponent("hub"), revisions: ["aaa111", "bbb222"], main: "aaa111")
        let found = try CheckpointLayout.locate("Deci/DeciDiffusion-v1-0", environment: ["HF_HOME": home.path, "HOME": "/nonexistent"])
        #expect(found.path == repo.appendingPathComponent("snapshots/aaa111").path)
    }

    @Test func hubCacheVariableComesFirstThenNewestSnapshot() throws {
        let hub = try tempDir(), home = try tempDir()
        defer { try? fm.removeItem(at: hub); try? fm.removeItem(at: home) }
        _ = try makeRepo(in: home.appendingPathComponent("hub"), revisions: ["fromhome"], main: "fromhome")
        let repo = try makeRepo(in: hub, revisions: ["old", "new"], main: nil)
        try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000)],
                             ofItemAtPath: repo.appendingPathComponent("snapshots/old").path)
        try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: 2_000_000)],
                             ofItemAtPath: repo.appendingPathComponent("snapshots/new").path)
        let found = try CheckpointLayout.locate("Deci/DeciDiffusion-v1-0", environment: ["HF_HUB_CACHE": hub.path, "HF_HOME": home.path])
        #expect(found.path == repo.appendingPathComponent("snapshots/new").path)
    }

    @Test func defaultCacheUnderHome() throws {
        let home = try tempDir()
        defer { try? fm.removeItem(at: home) }
        let repo = try makeRepo(in: home.appendingPathComponent(".cache/huggingface/hub"), revisions: ["r1"], main: "r1")
        let found = try CheckpointLayout.locate("Deci/DeciDiffusion-v1-0", environment: ["HOME": home.path])
        #expect(found.path == repo.appendingPathComponent("snapshots/r1").path)
    }

    @Test func foldersFilesAndMisses() throws {
        let dir = try tempDir()
        defer { try? fm.removeItem(at: dir) }
        #expect(try CheckpointLayout.locate(dir.path, environment: [:]).path == dir.path)
        let file = dir.appendingPathComponent("model.safetensors")
        try Data().write(to: file)
        #expect(errorText { _ = try CheckpointLayout.locate(file.path, environment: [:]) }?.contains("is a file") == true)
        let miss = errorText { _ = try CheckpointLayout.locate("Nobody/nothing", environment: ["HF_HOME": dir.path, "HOME": dir.path]) }
        #expect(miss?.contains("model 'Nobody/nothing' not found") == true && miss?.contains(dir.path + "/hub") == true, "\(miss ?? "")")
        let path = errorText { _ = try CheckpointLayout.locate("./no/such/folder", environment: [:]) }
        #expect(path?.contains("no such folder") == true)
    }
}
