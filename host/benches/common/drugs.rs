//! The drug reference's benchmark data: 15 seed medications and a generated interaction table
//! in OSCAR's quoted "Holbrook" CSV (the drugref and hotpaths benchmarks).

/// xorshift64*: a fixed, dependency-free sequence, so every run imports the same file.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 15 medications (seed products) and their ATC codes.
pub const MEDS: [(&str, &str); 15] = [
    ("99000011", "B01AA03"),
    ("99000051", "C07AB02"),
    ("99000061", "C09AA05"),
    ("99000071", "C03DA01"),
    ("99000081", "C08CA01"),
    ("99000091", "C10AA05"),
    ("99000101", "A10BA02"),
    ("99000111", "H03AA01"),
    ("99000122", "A02BC02"),
    ("99000131", "N06AB06"),
    ("99000041", "N02BE01"),
    ("99000171", "R03AC02"),
    ("99000191", "M04AA01"),
    ("99000231", "M05BA04"),
    ("99000242", "N05CF01"),
];

/// A Holbrook-format table: pairs of plausible ATC codes and classes (a quarter of them
/// classes, like real tables), with comments of realistic length; one row in 250 is between
/// two of the medications above (or ibuprofen), by code or class.
pub fn holbrook(rows: usize) -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let groups = b"ABCDGHJLMNPRSV";
    let mut codes: Vec<String> = (0..3000)
        .map(|_| {
            format!(
                "{}{:02}{}{}{:02}",
                groups[rng.below(groups.len())] as char,
                1 + rng.below(20),
                (b'A' + rng.below(8) as u8) as char,
                (b'A' + rng.below(8) as u8) as char,
                1 + rng.below(30)
            )
        })
        .collect();
    codes.extend(MEDS.iter().map(|(_, c)| c.to_string()));
    let mut out = String::from(
        "\"id\",\"atc_a\",\"atc_b\",\"effect\",\"significance\",\"evidence\",\"comment\",\"name_a\",\"name_b\"\n",
    );
    for i in 0..rows {
        let pick = |rng: &mut Rng| {
            let c = &codes[rng.below(codes.len())];
            match rng.below(8) {
                0 => c[..4].to_string(),
                1 => c[..5].to_string(),
                _ => c.clone(),
            }
        };
        // One row in 250 is between two drugs this patient takes or is offered (ibuprofen).
        let (a, b) = if i % 250 == 0 {
            let near = |rng: &mut Rng| {
                let c = if rng.below(16) == 15 {
                    "M01AE01"
                } else {
                    MEDS[rng.below(15)].1
                };
                c[..[4, 5, 7][rng.below(3)]].to_string()
            };
            (near(&mut rng), near(&mut rng))
        } else {
            (pick(&mut rng), pick(&mut rng))
        };
        let effect = ["A", "I", "N", "U", ""][rng.below(5)];
        let sig = ["1", "2", "3", ""][rng.below(4)];
        let ev = ["P", "F", "G", ""][rng.below(4)];
        out += &format!(
            "\"{i}\",\"{a}\",\"{b}\",\"{effect}\",\"{sig}\",\"{ev}\",\"Concurrent use may alter serum levels; monitor clinical response and adjust the dose (row {i}).\",\"substance {a}\",\"substance {b}\"\n"
        );
    }
    out
}
