// Updates one search index after a move.
exports.indexNewOwner = async (event) => ({ indexed: event.new_owner, index: "indexNewOwner" });
