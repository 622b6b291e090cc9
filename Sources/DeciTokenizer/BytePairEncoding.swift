import Foundation

/// GPT-2 / CLIP byte-level alphabet: every byte gets a printable stand-in character so that BPE symbols
/// never contain whitespace or control characters. Bytes that already print as a Latin-1 glyph keep it;
/// the other 68 bytes are mapped, in byte order, to U+0100 and up. Matches `bytes_to_unicode` in
/// transformers' tokenization_clip.py and the tokenizers ByteLevel pre-tokenizer.
enum ByteAlphabet {
    static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for byte in 0..<256 {
            let printsAsItself = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printsAsItself {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(256 + extra)!
                extra += 1
            }
        }
        return table
    }()

    static let bytes: [UInt32: UInt8] = {
        var inverse: [UInt32: UInt8] = [:]
        for (byte, scalar) in characters.enumerated() { inverse[scalar.value] = UInt8(byte) }
        return inverse
    }()

    static func string(for bytes: some Sequence<UInt8>) -> String {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(characters[Int(b)]) }
        return String(view)
    }
}

/// Byte-level BPE over token ids: a word's UTF-8 bytes start as one symbol each (the last one carrying
/// the `</w>` end-of-word suffix) and the lowest-ranked adjacent pair from merges.txt is merged until no
/// ranked pair is left. Uses a heap of candidate pairs so a word of n bytes costs O(n log n); the result
/// equals the reference "merge every occurrence of the best pair, repeat" loop because merges.txt only
/// ever merges a symbol after the merge that created it (so a merge never produces a lower-ranked pair).
struct BytePairEncoder: Sendable {
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Vocabulary id of each byte's stand-in character, and of that character + "</w>".
    let byteIDs: [Int32]
    let finalByteIDs: [Int32]

    init(vocabulary: [ByteString: Int32], merges: [(left: [UInt8], right: [UInt8], line: Int)], mergesPath: String,
         maxMerges: Int?, unknownID: Int32) throws {
        var byteIDs = [Int32](repeating: unknownID, count: 256)
        var finalIDs = [Int32](repeating: unknownID, count: 256)
        for byte in 0..<256 {
            let symbol = String(ByteAlphabet.characters[byte])
            byteIDs[byte] = vocabulary[ByteString(symbol)] ?? unknownID
            finalIDs[byte] = vocabulary[ByteString(symbol + "</w>")] ?? unknownID
        }
        self.byteIDs = byteIDs
        self.finalByteIDs = finalIDs

        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            if let limit = maxMerges, index >= limit { break }
            let left = ByteString(merge.left), right = ByteString(merge.right), joined = ByteString(merge.left + merge.right)
            guard let l = vocabulary[left], let r = vocabulary[right], let m = vocabulary[joined] else {
                let missing = [left, right, joined].first { vocabulary[$0] == nil } ?? left
                throw TokenizerError.invalidMerge(path: mergesPath, line: merge.line,
                                                  reason: "symbol \"\(missing.string)\" is not in the vocabulary")
            }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            // A repeated pair keeps its later rank, as a Python dict built from the list would.
            table[key] = UInt64(index) << 32 | UInt64(UInt32(bitPattern: m))
        }
        self.merges = table
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> UInt64? {
        merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))]
    }

    /// Appends the ids of one pre-tokenised word, given as its UTF-8 bytes.
    func encodeWord(_ bytes: [UInt8], into output: inout [Int32]) {
        let n = bytes.count
        guard n > 0 else { return }
        var ids = [Int32](repeating: 0, count: n)
        for i in 0..<n { ids[i] = byteIDs[Int(bytes[i])] }
        ids[n - 1] = finalByteIDs[Int(bytes[n - 1])]
        if n == 1 {
            output.append(ids[0])
            return
        }
        // Doubly linked list over symbol slots; a merged-away slot gets removed[slot] = true.
        var next = [Int32](repeating: -1, count: n)
        var prev = [Int32](repeating: -1, count: n)
        var removed = [Bool](repeating: false, count: n)
        for i in 0..<n {
            next[i] = i + 1 < n ? Int32(i + 1) : -1
            prev[i] = Int32(i - 1)
        }
        var heap = PairHeap()
        heap.reserve(n)
        for i in 0..<(n - 1) {
            if let m = lookup(ids[i], ids[i + 1]) { heap.push(rank: UInt32(m >> 32), position: UInt32(i)) }
        }
        while let (rank, position) = heap.pop() {
            let pos = Int(position)
            let right = next[pos]
            if removed[pos] || right < 0 { continue }
            // Entries go stale when a neighbour merges; only act if the pair here still has this rank.
            guard let m = lookup(ids[pos], ids[Int(right)]), UInt32(m >> 32) == rank else { continue }
            ids[pos] = Int32(bitPattern: UInt32(truncatingIfNeeded: m))
            removed[Int(right)] = true
            let after = next[Int(right)]
            next[pos] = after
            if after >= 0 { prev[Int(after)] = Int32(pos) }
            let before = prev[pos]
            if before >= 0, let p = lookup(ids[Int(before)], ids[pos]) {
                heap.push(rank: UInt32(p >> 32), position: UInt32(before))
            }
            if after >= 0, let p = lookup(ids[pos], ids[Int(after)]) {
                heap.push(rank: UInt32(p >> 32), position: UInt32(pos))
            }
        }
        var i: Int32 = 0
        while i >= 0 {
            output.append(ids[Int(i)])
            i = next[Int(i)]
        }
    }
}

/// Min-heap of (rank, position) packed into one UInt64 so that ties in rank resolve leftmost first.
struct PairHeap {
    private var items: [UInt64] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(rank: UInt32, position: UInt32) {
        items.append(UInt64(rank) << 32 | UInt64(position))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> (UInt32, UInt32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= items.count { break }
                var smallest = left
                if left + 1 < items.count && items[left + 1] < items[left] { smallest = left + 1 }
                if items[parent] <= items[smallest] { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (UInt32(top >> 32), UInt32(truncatingIfNeeded: top))
    }
}

/// Word -> ids cache shared by copies of a tokenizer. Prompts repeat words constantly, so most words skip
/// BPE entirely. Keyed by UTF-8 bytes (see `ByteString`). Bounded: cleared when it grows past `limit`
/// entries.
final class WordCache: @unchecked Sendable {
    private var storage: [ByteString: [Int32]] = [:]
    private let lock = NSLock()
    private let limit: Int

    init(limit: Int = 100_000) { self.limit = limit }

    func get(_ key: ByteString) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return storage[key]
    }

    func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        storage.removeAll()
    }

    func set(_ key: ByteString, _ value: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if storage.count >= limit { storage.removeAll(keepingCapacity: true) }
        storage[key] = value
    }
}
