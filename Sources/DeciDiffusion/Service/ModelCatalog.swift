import DeciTensor
import Foundation

/// The models a service may run: a fixed list of names, each a checkpoint folder found when the
/// service started. A request can only pick a name from this list, never a path.
public struct ModelCatalog: Sendable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var folder: URL
        public init(name: String, folder: URL) { (self.name, self.folder) = (name, folder) }
    }

    public let entries: [Entry]
    public let precision: Precision
    public let variant: String?

    /// `entries` must be non-empty with distinct names; the first is the default model.
    public init(entries: [Entry], precision: Precision = .f32, variant: String? = nil) throws {
        guard !entries.isEmpty else { throw CheckpointError("no model to serve") }
        var seen = Set<String>()
        for e in entries where !seen.insert(e.name).inserted {
            throw CheckpointError("\(e.folder.path): model name \"\(e.name)\" is already taken by another folder")
        }
        (self.entries, self.precision, self.variant) = (entries, precision, variant)
    }

    /// One checkpoint folder, named after the folder.
    public init(folder: URL, precision: Precision = .f32, variant: String? = nil) throws {
        try self.init(entries: [Entry(name: folder.standardizedFileURL.lastPathComponent, folder: folder)], precision: precision, variant: variant)
    }

    /// Every checkpoint folder (one holding `model_index.json`) directly inside `directory`, sorted by name.
    public init(modelsDirectory directory: URL, precision: Precision = .f32, variant: String? = nil) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw CheckpointError("\(directory.path): cannot list the models directory (\(error.localizedDescription))")
        }
        let entries = names.sorted().compactMap { name -> Entry? in
            let folder = directory.appendingPathComponent(name)
            guard !name.hasPrefix("."),
                  FileManager.default.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) else { return nil }
            return Entry(name: name, folder: folder)
        }
        guard !entries.isEmpty else {
            throw CheckpointError("\(directory.path): no checkpoint folder (with a model_index.json) in the models directory")
        }
        try self.init(entries: entries, precision: precision, variant: variant)
    }

    public var names: [String] { entries.map(\.name) }
    public var defaultName: String { entries[0].name }

    /// The entry a request names (nil: the default), or why not.
    public func entry(named name: String?) throws(ServiceError) -> Entry {
        guard let name else { return entries[0] }
        guard let e = entries.first(where: { $0.name == name }) else { throw .unknownModel(name, available: names) }
        return e
    }
}
