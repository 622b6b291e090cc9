import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a download reports as it goes (to a progress bar or a log).
public enum DownloadEvent: Sendable {
    /// The file list is known: how many files and bytes are to fetch (those not in the cache yet).
    case planned(commit: String, files: Int, bytes: Int64)
    /// A file starts; `resumedFrom` > 0 when an `.incomplete` file is continued.
    case fileStarted(path: String, size: Int64, resumedFrom: Int64)
    case bytes(Int)
    case fileFinished(path: String)
    case note(String)
}

public struct DownloadResult: Sendable {
    /// `snapshots/<commit>`: what `--model` resolves the repo id to.
    public var snapshot: URL
    public var commit: String
    public var files: [String]
    /// Bytes fetched in this run (0 when everything was cached).
    public var bytesDownloaded: Int64
    public var notes: [String]
}

/// `decidiffusion download`: fetches the files of a diffusers pipeline repo that the engine needs
/// into the shared Hugging Face cache, verifying each against the hash the Hub announces.
public struct HubDownloader: Sendable {
    public var settings: HubSettings
    /// Largest file accepted (the full-size fp32 DeciDiffusion U-Net is about 4 GB).
    public var maxFileBytes: Int64 = 64 << 30
    /// Largest non-weights file (configs, tokenizer files).
    public var maxSmallFileBytes: Int64 = 64 << 20

    public init(settings: HubSettings) { self.settings = settings }

    public func download(repo: String, revision: String = "main", variant: String? = nil,
                         progress: @Sendable (DownloadEvent) -> Void = { _ in }) async throws(HubError) -> DownloadResult {
        try HubNames.validateRevision(revision)
        if let variant { try HubNames.validateRevision(variant) }
        let cache = try HubRepoCache(cacheDirectory: settings.cacheDirectory, repoID: repo)
        if settings.offline { return try cachedSnapshot(cache, revision: revision) }

        let client = HubClient(settings: settings)
        do {
            let result = try await fetch(client: client, cache: cache, revision: revision, variant: variant, progress: progress)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// HF_HUB_OFFLINE: the cached snapshot for `revision`, when it holds a pipeline.
    func cachedSnapshot(_ cache: HubRepoCache, revision: String) throws(HubError) -> DownloadResult {
        guard let commit = cache.commit(for: revision), cache.hasFile("model_index.json", commit: commit) else {
            throw .offlineNotCached(repo: cache.repoID, revision: revision, cache: settings.cacheDirectory.path)
        }
        return DownloadResult(snapshot: cache.snapshot(commit), commit: commit, files: [], bytesDownloaded: 0,
                              notes: ["HF_HUB_OFFLINE is set: using the cached snapshot \(commit) without checking the Hub"])
    }

    private func fetch(client: HubClient, cache: HubRepoCache, revision: String, variant: String?,
                       progress: @Sendable (DownloadEvent) -> Void) async throws(HubError) -> DownloadResult {
        let info = try await client.repoInfo(repo: cache.repoID, revision: revision)
        for sibling in info.siblings { try HubNames.validateRepoFile(sibling.path) }
        let commit = info.commit
        var downloaded: Int64 = 0
        guard info.siblings.contains(where: { $0.path == "model_index.json" }) else {
            throw .unsupportedRepo("\(cache.repoID) has no model_index.json: not a diffusers pipeline repo")
        }
        downloaded += try await fetchFile("model_index.json", info: info, client: client, cache: cache, progress: progress)
        let components = try Self.declaredComponents(cache.snapshot(commit).appendingPathComponent("model_index.json"))
        let selection = try FileSelection(repoFiles: info.siblings.map(\.path), components: components, variant: variant)
        for note in selection.notes { progress(.note(note)) }

        let pending = selection.files.filter { !cache.hasFile($0, commit: commit) }
        let sizes = Dictionary(info.siblings.map { ($0.path, $0.size ?? 0) }, uniquingKeysWith: { a, _ in a })
        progress(.planned(commit: commit, files: pending.count, bytes: pending.reduce(0) { $0 + (sizes[$1] ?? 0) }))
        for file in pending {
            downloaded += try await fetchFile(file, info: info, client: client, cache: cache, progress: progress)
        }
        try cache.writeRef(revision, commit: commit)
        return DownloadResult(snapshot: cache.snapshot(commit), commit: commit, files: selection.files, bytesDownloaded: downloaded,
                              notes: selection.notes)
    }

    /// One file into `blobs/` (resuming an `.incomplete` copy) and linked into the snapshot.
    /// Returns the bytes transferred.
    private func fetchFile(_ file: String, info: RepoInfo, client: HubClient, cache: HubRepoCache,
                           progress: @Sendable (DownloadEvent) -> Void) async throws(HubError) -> Int64 {
        if cache.hasFile(file, commit: info.commit) { return 0 }
        let meta = try await client.metadata(repo: cache.repoID, commit: info.commit, file: file)
        if let served = meta.commit, served != info.commit {
            throw .badResponse("\(file): served from commit \(served), but the file list was for \(info.commit)")
        }
        let sibling = info.siblings.first { $0.path == file }
        if let listed = sibling?.lfsSHA256, listed != meta.etag {
            throw .badResponse("\(file): the file list gives sha256 \(listed) but the download's ETag is \(meta.etag)")
        }
        let isWeights = file.hasSuffix(".safetensors")
        let limit = isWeights ? maxFileBytes : maxSmallFileBytes
        guard meta.size <= limit else {
            throw .badResponse("\(file): announced size \(meta.size) bytes is over the \(limit >> 20) MB limit for such a file")
        }
        let blob = cache.blob(meta.etag)
        try HubRepoCache.makeDirectory(blob.deletingLastPathComponent())
        var transferred: Int64 = 0
        if Self.size(of: blob) != meta.size {
            transferred = try await cache.withBlobLock(meta.etag, file: file) { () async throws(HubError) -> Int64 in
                try await fetchBlob(file, meta: meta, client: client, cache: cache, progress: progress)
            }
        }
        try cache.link(file, commit: info.commit, etag: meta.etag)
        return transferred
    }

    private func fetchBlob(_ file: String, meta: FileMetadata, client: HubClient, cache: HubRepoCache,
                           progress: @Sendable (DownloadEvent) -> Void) async throws(HubError) -> Int64 {
        let partial = cache.incomplete(meta.etag)
        let fm = FileManager.default
        if !fm.fileExists(atPath: partial.path) { _ = fm.createFile(atPath: partial.path, contents: nil) }
        var offset = Self.size(of: partial) ?? 0
        if offset > meta.size {  // not a prefix of this file: start over
            try? fm.removeItem(at: partial)
            _ = fm.createFile(atPath: partial.path, contents: nil)
            offset = 0
        }
        let handle: FileHandle
        do { handle = try FileHandle(forUpdating: partial) } catch {
            throw .fileSystem(path: partial.path, reason: "cannot open for writing (\(error.localizedDescription))")
        }
        defer { try? handle.close() }
        if let free = Self.freeBytes(partial.deletingLastPathComponent()), free < meta.size - offset {
            throw .fileSystem(path: partial.deletingLastPathComponent().path,
                              reason: "\(file) needs \(meta.size - offset) more bytes but only \(free) are free on this disk")
        }
        var hash = ContentHash(etag: meta.etag, size: meta.size)
        try Self.hashExisting(handle, bytes: offset, into: &hash, path: partial.path)
        progress(.fileStarted(path: file, size: meta.size, resumedFrom: offset))
        var written: Int64 = 0
        if offset < meta.size {
            try await client.download(
                url: meta.location, offset: offset, expectedSize: meta.size, file: file, repo: cache.repoID,
                restart: { () throws(HubError) in
                    // The server ignored the Range header: start over.
                    do { try handle.truncate(atOffset: 0) } catch { throw .fileSystem(path: partial.path, reason: "cannot truncate (\(error))") }
                    hash = ContentHash(etag: meta.etag, size: meta.size)
                },
                chunk: { (bytes) throws(HubError) in
                    do { try handle.write(contentsOf: bytes) } catch {
                        throw .fileSystem(path: partial.path, reason: "cannot write (\(error.localizedDescription)); is the disk full?")
                    }
                    hash.update(bytes)
                    written += Int64(bytes.count)
                    progress(.bytes(bytes.count))
                })
        }
        do { try handle.synchronize() } catch { throw .fileSystem(path: partial.path, reason: "cannot flush (\(error.localizedDescription))") }
        let digest = hash.hexDigest()
        guard digest == meta.etag else {
            try? fm.removeItem(at: partial)
            throw .corrupt(file: file, reason: "its \(hash.kind) is \(digest) but the Hub announced \(meta.etag)")
        }
        try cache.commitBlob(meta.etag)
        progress(.fileFinished(path: file))
        return written
    }

    /// Component names `model_index.json` declares with a class (`[library, class]`, not `[null, null]`).
    static func declaredComponents(_ url: URL) throws(HubError) -> Set<String> {
        guard let data = try? Data(contentsOf: url), let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .unsupportedRepo("\(url.path): model_index.json is not a JSON object")
        }
        var names: Set<String> = []
        for (key, value) in obj where !key.hasPrefix("_") {
            if let pair = value as? [Any], pair.count == 2, pair[1] is String { names.insert(key) }
        }
        return names
    }

    static func size(of url: URL) -> Int64? {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value
    }

    static func freeBytes(_ folder: URL) -> Int64? {
        var stats = statvfs()
        guard statvfs(folder.path, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// Feeds the bytes already on disk into the hash, so a resumed file is verified whole.
    static func hashExisting(_ handle: FileHandle, bytes: Int64, into hash: inout ContentHash, path: String) throws(HubError) {
        do {
            try handle.seek(toOffset: 0)
            var left = bytes
            while left > 0 {
                guard let data = try handle.read(upToCount: Int(min(left, 8 << 20))), !data.isEmpty else { break }
                data.withUnsafeBytes { hash.update($0) }
                left -= Int64(data.count)
            }
            try handle.seek(toOffset: UInt64(bytes))
        } catch {
            throw .fileSystem(path: path, reason: "cannot read the partial download (\(error.localizedDescription))")
        }
    }
}
