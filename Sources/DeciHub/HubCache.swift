import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One repo's folder in the Hugging Face cache, in the layout huggingface_hub writes and reads:
///
///     models--ORG--NAME/blobs/<etag>                        file contents, named by git sha1 or sha256
///     models--ORG--NAME/blobs/<etag>.incomplete             a download in progress (resumed from its size)
///     models--ORG--NAME/snapshots/<commit>/<path>           relative symlink to ../../blobs/<etag>
///     models--ORG--NAME/refs/<revision>                     the commit the revision pointed at
///     .locks/models--ORG--NAME/<etag>.lock                  the flock huggingface_hub also takes
///
/// Every write is atomic (a temporary name, then rename), so a reader never sees a half file where
/// a complete one is expected.
public struct HubRepoCache: Sendable {
    public let cacheDirectory: URL
    public let repoID: String
    public var root: URL { cacheDirectory.appendingPathComponent(HubNames.repoFolderName(repoID)) }

    public init(cacheDirectory: URL, repoID: String) throws(HubError) {
        try HubNames.validateRepoID(repoID)
        self.cacheDirectory = cacheDirectory
        self.repoID = repoID
    }

    public func blob(_ etag: String) -> URL { root.appendingPathComponent("blobs/" + etag) }
    public func incomplete(_ etag: String) -> URL { root.appendingPathComponent("blobs/" + etag + ".incomplete") }
    public func snapshot(_ commit: String) -> URL { root.appendingPathComponent("snapshots/" + commit) }
    func lockFile(_ etag: String) -> URL {
        cacheDirectory.appendingPathComponent(".locks/" + HubNames.repoFolderName(repoID) + "/" + etag + ".lock")
    }

    /// The commit `revision` names locally: itself when it is a commit hash, else `refs/<revision>`.
    public func commit(for revision: String) -> String? {
        if HubNames.isCommitHash(revision) { return revision }
        guard let text = try? String(contentsOf: root.appendingPathComponent("refs/" + revision), encoding: .utf8) else { return nil }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return HubNames.isCommitHash(commit) ? commit : nil
    }

    /// True when `snapshots/<commit>/<file>` exists and resolves to a blob (a dangling link is not a file).
    public func hasFile(_ file: String, commit: String) -> Bool {
        FileManager.default.fileExists(atPath: snapshot(commit).appendingPathComponent(file).path)
    }

    public func writeRef(_ revision: String, commit: String) throws(HubError) {
        guard revision != commit else { return }
        let url = root.appendingPathComponent("refs/" + revision)
        try Self.makeDirectory(url.deletingLastPathComponent())
        do { try Data(commit.utf8).write(to: url, options: .atomic) } catch {
            throw .fileSystem(path: url.path, reason: "cannot write the ref (\(error.localizedDescription))")
        }
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative link (so the cache can be
    /// moved), replacing what was there in one rename.
    public func link(_ file: String, commit: String, etag: String) throws(HubError) {
        let target = snapshot(commit).appendingPathComponent(file)
        try Self.makeDirectory(target.deletingLastPathComponent())
        let depth = file.split(separator: "/").count - 1
        let relative = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        let temp = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString).tmp")
        do {
            try FileManager.default.createSymbolicLink(atPath: temp.path, withDestinationPath: relative)
        } catch {
            throw .fileSystem(path: temp.path, reason: "cannot create the snapshot link (\(error.localizedDescription))")
        }
        guard rename(temp.path, target.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temp)
            throw .fileSystem(path: target.path, reason: "cannot place the snapshot link (\(reason))")
        }
    }

    /// Moves a verified download into place as `blobs/<etag>`.
    func commitBlob(_ etag: String) throws(HubError) {
        guard rename(incomplete(etag).path, blob(etag).path) == 0 else {
            throw .fileSystem(path: blob(etag).path, reason: "cannot move the finished download into place (\(String(cString: strerror(errno))))")
        }
    }

    static func makeDirectory(_ url: URL) throws(HubError) {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw .fileSystem(path: url.path, reason: "cannot create the folder (\(error.localizedDescription))")
        }
    }

    /// Holds huggingface_hub's per-blob lock (flock on `.locks/.../<etag>.lock`) while `body` runs,
    /// so this tool and a Python process never write the same `.incomplete` file at once.
    func withBlobLock<T>(_ etag: String, file: String, _ body: () async throws(HubError) -> T) async throws(HubError) -> T {
        let url = lockFile(etag)
        try Self.makeDirectory(url.deletingLastPathComponent())
        let fd = open(url.path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw HubError.fileSystem(path: url.path, reason: "cannot open the lock file (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw HubError.fileSystem(path: url.path, reason: "another process is downloading \(file) into this cache; wait for it or stop it")
        }
        defer { flock(fd, LOCK_UN) }
        return try await body()
    }
}
