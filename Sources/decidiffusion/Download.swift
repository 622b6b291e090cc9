// `decidiffusion download`: a thin shell over DeciHub's HubDownloader. Parse flags, run the
// download with a progress bar, print the snapshot folder.
import ArgumentParser
import DeciHub
import Foundation

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a diffusers pipeline from the Hugging Face Hub into the shared cache.",
        discussion: """
            Fetches only what the engine loads (configs, tokenizer, safetensors weights) into \
            $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub, in the layout diffusers uses, so both \
            share the files. Interrupted downloads resume; every file is checked against the Hub's hash. \
            Reads HF_TOKEN (gated or private repos), HF_ENDPOINT and HF_HUB_OFFLINE. Then use the repo id \
            as --model, e.g. `decidiffusion generate --model Deci/DeciDiffusion-v1-0 "a photo of a cat"`.
            """)

    @Argument(help: "The Hub repo id, e.g. Deci/DeciDiffusion-v1-0.") var repo: String
    @Option(help: "Branch, tag or commit.") var revision = "main"
    @Option(name: [.customLong("include"), .customLong("variant")],
            help: "Weights variant to fetch instead of the plain weights (e.g. fp16), where the repo has it.")
    var variant: String?
    @Option(name: .customLong("cache-dir"), help: "Hub cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).")
    var cacheDir: String?

    func run() throws {
        var settings = HubSettings()
        if let cacheDir { settings.cacheDirectory = URL(fileURLWithPath: (cacheDir as NSString).expandingTildeInPath) }
        let progress = DownloadProgress()
        let downloader = HubDownloader(settings: settings)
        let outcome = DownloadOutcome()
        let done = DispatchSemaphore(value: 0)
        let (repo, revision, variant) = (self.repo, self.revision, self.variant)
        // The root command is synchronous: run the download on the concurrency pool and wait here.
        Task {
            do {
                outcome.result = try await downloader.download(repo: repo, revision: revision, variant: variant) { progress.handle($0) }
            } catch {
                outcome.error = error
            }
            done.signal()
        }
        done.wait()
        progress.finish()
        if let error = outcome.error { throw error }
        guard let result = outcome.result else { return }
        for note in result.notes where settings.offline { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        let hint = "\(repo) is in the cache (\(DownloadProgress.bytes(result.bytesDownloaded)) fetched); generate with:\n"
            + "  decidiffusion generate --model \(repo) \"a photo of a cat\"\n"
        FileHandle.standardError.write(Data(hint.utf8))
        print(result.snapshot.path)
    }
}

private final class DownloadOutcome: @unchecked Sendable {
    var result: DownloadResult?
    var error: (any Error)?
}
