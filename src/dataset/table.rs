//! Columnar tables written as Parquet (through the `parquet` crate's column API, Snappy pages,
//! dictionary-encoded strings) or CSV, and read back from Parquet.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use parquet::basic::{Compression, ConvertedType, Repetition, Type as Physical};
use parquet::column::reader::get_typed_column_reader;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FloatType, Int32Type, Int64Type};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// One column's values. Optional columns hold `None` for missing values.
#[derive(Debug, Clone, PartialEq)]
pub enum Col {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    OptF32(Vec<Option<f32>>),
    F64(Vec<f64>),
    /// Strings as indices into a dictionary (cheap to build per row; written as UTF-8).
    Str {
        dict: Vec<Arc<str>>,
        codes: Vec<u32>,
    },
    OptStr {
        dict: Vec<Arc<str>>,
        codes: Vec<Option<u32>>,
    },
}

impl Col {
    pub fn len(&self) -> usize {
        match self {
            Col::I32(v) => v.len(),
            Col::I64(v) => v.len(),
            Col::F32(v) => v.len(),
            Col::OptF32(v) => v.len(),
            Col::F64(v) => v.len(),
            Col::Str { codes, .. } => codes.len(),
            Col::OptStr { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn schema_type(&self, name: &str) -> Type {
        let (physical, converted, repetition) = match self {
            Col::I32(_) => (Physical::INT32, ConvertedType::NONE, Repetition::REQUIRED),
            Col::I64(_) => (Physical::INT64, ConvertedType::NONE, Repetition::REQUIRED),
            Col::F32(_) => (Physical::FLOAT, ConvertedType::NONE, Repetition::REQUIRED),
            Col::OptF32(_) => (Physical::FLOAT, ConvertedType::NONE, Repetition::OPTIONAL),
            Col::F64(_) => (Physical::DOUBLE, ConvertedType::NONE, Repetition::REQUIRED),
            Col::Str { .. } => (Physical::BYTE_ARRAY, ConvertedType::UTF8, Repetition::REQUIRED),
            Col::OptStr { .. } => (Physical::BYTE_ARRAY, ConvertedType::UTF8, Repetition::OPTIONAL),
        };
        Type::primitive_type_builder(name, physical)
            .with_converted_type(converted)
            .with_repetition(repetition)
            .build()
            .expect("valid column type")
    }

    /// The value of row `i` as CSV text (empty when missing).
    fn csv(&self, i: usize, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match self {
            Col::I32(v) => write!(out, "{}", v[i]),
            Col::I64(v) => write!(out, "{}", v[i]),
            Col::F32(v) => write!(out, "{}", v[i]),
            Col::OptF32(v) => match v[i] {
                Some(x) => write!(out, "{x}"),
                None => Ok(()),
            },
            Col::F64(v) => write!(out, "{}", v[i]),
            Col::Str { dict, codes } => {
                out.push_str(&dict[codes[i] as usize]);
                Ok(())
            }
            Col::OptStr { dict, codes } => {
                if let Some(c) = codes[i] {
                    out.push_str(&dict[c as usize]);
                }
                Ok(())
            }
        };
    }
}

/// A string dictionary being built.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    pub values: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Dict {
    pub fn code(&mut self, s: &str) -> u32 {
        if let Some(c) = self.index.get(s) {
            return *c;
        }
        let c = self.values.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.values.push(Arc::clone(&a));
        self.index.insert(a, c);
        c
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub cols: Vec<Col>,
}

impl Table {
    pub fn new(cols: Vec<(&str, Col)>) -> Table {
        let (names, cols) = cols.into_iter().map(|(n, c)| (n.to_string(), c)).unzip();
        Table { names, cols }
    }

    pub fn rows(&self) -> usize {
        self.cols.first().map_or(0, Col::len)
    }

    pub fn col(&self, name: &str) -> Result<&Col> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.cols[i])
            .with_context(|| format!("no column \"{name}\""))
    }

    fn schema(&self) -> Arc<Type> {
        let fields = self.names.iter().zip(&self.cols).map(|(n, c)| Arc::new(c.schema_type(n))).collect();
        Arc::new(Type::group_type_builder("schema").with_fields(fields).build().expect("valid schema"))
    }
}

/// Writes tables of one schema as row groups of one Parquet file.
pub struct ParquetWriter {
    inner: SerializedFileWriter<std::io::BufWriter<std::fs::File>>,
    path: String,
}

impl ParquetWriter {
    pub fn create(path: &Path, like: &Table) -> Result<ParquetWriter> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        // Dictionaries only for text (measurements rarely repeat: hashing them is wasted work),
        // statistics per column chunk.
        let mut props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("twinfault {}", env!("CARGO_PKG_VERSION")))
            .set_max_row_group_row_count(Some(4 << 20))
            .set_dictionary_enabled(false)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk);
        for (name, col) in like.names.iter().zip(&like.cols) {
            if matches!(col, Col::Str { .. } | Col::OptStr { .. }) {
                props =
                    props.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(name.as_str()), true);
            }
        }
        let props = props.build();
        let inner = SerializedFileWriter::new(std::io::BufWriter::new(file), like.schema(), Arc::new(props))?;
        Ok(ParquetWriter { inner, path: path.display().to_string() })
    }

    /// Appends `t` as one row group.
    pub fn write(&mut self, t: &Table) -> Result<()> {
        let mut rg = self.inner.next_row_group()?;
        for col in &t.cols {
            let mut w = rg.next_column()?.context("more columns than the schema")?;
            match col {
                Col::I32(v) => {
                    w.typed::<Int32Type>().write_batch(v, None, None)?;
                }
                Col::I64(v) => {
                    w.typed::<Int64Type>().write_batch(v, None, None)?;
                }
                Col::F32(v) => {
                    w.typed::<FloatType>().write_batch(v, None, None)?;
                }
                Col::F64(v) => {
                    w.typed::<DoubleType>().write_batch(v, None, None)?;
                }
                Col::OptF32(v) => {
                    let def: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                    let vals: Vec<f32> = v.iter().flatten().copied().collect();
                    w.typed::<FloatType>().write_batch(&vals, Some(&def), None)?;
                }
                Col::Str { dict, codes } => {
                    let arrays = byte_arrays(dict);
                    let vals: Vec<ByteArray> = codes.iter().map(|c| arrays[*c as usize].clone()).collect();
                    w.typed::<ByteArrayType>().write_batch(&vals, None, None)?;
                }
                Col::OptStr { dict, codes } => {
                    let arrays = byte_arrays(dict);
                    let def: Vec<i16> = codes.iter().map(|x| i16::from(x.is_some())).collect();
                    let vals: Vec<ByteArray> = codes.iter().flatten().map(|c| arrays[*c as usize].clone()).collect();
                    w.typed::<ByteArrayType>().write_batch(&vals, Some(&def), None)?;
                }
            }
            w.close()?;
        }
        rg.close()?;
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let mut w = self.inner.into_inner().with_context(|| format!("cannot finish {path}"))?;
        w.flush().with_context(|| format!("cannot write {path}"))?;
        w.get_ref().sync_all().with_context(|| format!("cannot sync {path}"))?;
        Ok(())
    }
}

/// Dictionary values as byte arrays over static memory: cloning one per row is then a copy of
/// two words, not an atomic reference count (a third of the writer's time otherwise). The
/// strings are few and small (node ids, kinds, phases, fault ids), each kept once per process.
fn byte_arrays(dict: &[Arc<str>]) -> Vec<ByteArray> {
    static KEPT: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> = std::sync::Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let set = kept.get_or_insert_with(Default::default);
    dict.iter()
        .map(|s| {
            let st: &'static str = match set.get(&**s) {
                Some(k) => k,
                None => {
                    let k: &'static str = Box::leak(s.to_string().into_boxed_str());
                    set.insert(k);
                    k
                }
            };
            ByteArray::from(Bytes::from_static(st.as_bytes()))
        })
        .collect()
}

/// Writes tables of one schema to a CSV file with a header.
pub struct CsvWriter {
    out: std::io::BufWriter<std::fs::File>,
    path: String,
    line: String,
}

impl CsvWriter {
    pub fn create(path: &Path, like: &Table) -> Result<CsvWriter> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "{}", like.names.join(","))?;
        Ok(CsvWriter { out, path: path.display().to_string(), line: String::new() })
    }

    pub fn write(&mut self, t: &Table) -> Result<()> {
        for i in 0..t.rows() {
            self.line.clear();
            for (k, c) in t.cols.iter().enumerate() {
                if k > 0 {
                    self.line.push(',');
                }
                c.csv(i, &mut self.line);
            }
            self.line.push('\n');
            self.out.write_all(self.line.as_bytes()).with_context(|| format!("cannot write {}", self.path))?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write {}", self.path))?;
        Ok(())
    }
}

/// Writes one table to `path`: Parquet when its name ends in `.parquet`, CSV otherwise.
pub fn write_file(path: &Path, t: &Table) -> Result<()> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) {
        let mut w = ParquetWriter::create(path, t)?;
        w.write(t)?;
        w.finish()
    } else {
        let mut w = CsvWriter::create(path, t)?;
        w.write(t)?;
        w.finish()
    }
}

/// Reads a whole Parquet file written by [`ParquetWriter`] (every row group, in order).
pub fn read_parquet(path: &Path) -> Result<Table> {
    Ok(read_row_groups(path, false)?.pop().expect("one table"))
}

/// Reads a Parquet file written by [`ParquetWriter`] as one table per row group (per run, for
/// `generate`'s files), in order.
pub fn read_parquet_groups(path: &Path) -> Result<Vec<Table>> {
    read_row_groups(path, true)
}

fn read_row_groups(path: &Path, per_group: bool) -> Result<Vec<Table>> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {label}"))?;
    let reader = SerializedFileReader::new(file).with_context(|| format!("{label} is not a Parquet file"))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let mut names = Vec::new();
    let mut cols = Vec::new();
    for c in schema.columns() {
        names.push(c.name().to_string());
        let optional = c.max_def_level() > 0;
        cols.push(match (c.physical_type(), optional) {
            (Physical::INT32, false) => Col::I32(Vec::new()),
            (Physical::INT64, false) => Col::I64(Vec::new()),
            (Physical::FLOAT, false) => Col::F32(Vec::new()),
            (Physical::FLOAT, true) => Col::OptF32(Vec::new()),
            (Physical::DOUBLE, false) => Col::F64(Vec::new()),
            (Physical::BYTE_ARRAY, false) => Col::Str { dict: Vec::new(), codes: Vec::new() },
            (Physical::BYTE_ARRAY, true) => Col::OptStr { dict: Vec::new(), codes: Vec::new() },
            (t, o) => bail!("{label}: column \"{}\" has an unsupported type {t:?} (optional: {o})", c.name()),
        });
    }
    let empty = cols.clone();
    let mut tables = Vec::new();
    let mut dicts: Vec<Dict> = vec![Dict::default(); cols.len()];
    // A table's text columns take their dictionaries when it is complete.
    let finish = |mut cols: Vec<Col>, dicts: Vec<Dict>| {
        for (col, d) in cols.iter_mut().zip(dicts) {
            match col {
                Col::Str { dict, .. } | Col::OptStr { dict, .. } => *dict = d.values,
                _ => {}
            }
        }
        Table { names: names.clone(), cols }
    };
    for g in 0..meta.num_row_groups() {
        let rg = reader.get_row_group(g)?;
        let rows = rg.metadata().num_rows() as usize;
        for (k, col) in cols.iter_mut().enumerate() {
            let cr = rg.get_column_reader(k)?;
            let mut def: Vec<i16> = Vec::new();
            macro_rules! read {
                ($t:ty, $vals:expr, $opt:expr) => {{
                    let mut r = get_typed_column_reader::<$t>(cr);
                    let mut vals = Vec::with_capacity(rows);
                    let mut done = 0;
                    while done < rows {
                        let (n, _, _) =
                            r.read_records(rows - done, if $opt { Some(&mut def) } else { None }, None, &mut vals)?;
                        if n == 0 {
                            bail!("{label}: row group {g} column {} ends early", names[k]);
                        }
                        done += n;
                    }
                    vals
                }};
            }
            match col {
                Col::I32(v) => v.extend(read!(Int32Type, v, false)),
                Col::I64(v) => v.extend(read!(Int64Type, v, false)),
                Col::F32(v) => v.extend(read!(FloatType, v, false)),
                Col::F64(v) => v.extend(read!(DoubleType, v, false)),
                Col::OptF32(v) => {
                    let vals = read!(FloatType, v, true);
                    let mut it = vals.into_iter();
                    v.extend(def.iter().map(|d| if *d > 0 { it.next() } else { None }));
                }
                Col::Str { codes, .. } => {
                    let vals = read!(ByteArrayType, codes, false);
                    for b in vals {
                        codes.push(dicts[k].code(b.as_utf8().with_context(|| format!("{label}: not UTF-8"))?));
                    }
                }
                Col::OptStr { codes, .. } => {
                    let vals = read!(ByteArrayType, codes, true);
                    let mut it = vals.into_iter();
                    for d in &def {
                        codes.push(match (*d > 0).then(|| it.next()).flatten() {
                            Some(b) => Some(dicts[k].code(b.as_utf8().with_context(|| format!("{label}: not UTF-8"))?)),
                            None => None,
                        });
                    }
                }
            }
        }
        if per_group {
            let n = cols.len();
            let done = std::mem::replace(&mut cols, empty.clone());
            tables.push(finish(done, std::mem::replace(&mut dicts, vec![Dict::default(); n])));
        }
    }
    if !per_group || tables.is_empty() && meta.num_row_groups() == 0 {
        tables.push(finish(cols, dicts));
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_round_trip_keeps_every_value_and_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Dict::default();
        let codes: Vec<u32> = ["a", "b", "a"].iter().map(|s| d.code(s)).collect();
        let t = Table::new(vec![
            ("i", Col::I32(vec![1, 2, 3])),
            ("t", Col::I64(vec![10, 20, 30])),
            ("x", Col::F32(vec![0.5, f32::NAN, -1.0])),
            ("q", Col::OptF32(vec![Some(0.9), None, Some(0.1)])),
            ("f", Col::F64(vec![1e-9, 2.0, 3.0])),
            ("s", Col::Str { dict: d.values.clone(), codes }),
            ("o", Col::OptStr { dict: d.values.clone(), codes: vec![None, Some(1), Some(0)] }),
        ]);
        let path = dir.path().join("t.parquet");
        let mut w = ParquetWriter::create(&path, &t).unwrap();
        w.write(&t).unwrap();
        w.write(&t).unwrap();
        w.finish().unwrap();
        let back = read_parquet(&path).unwrap();
        assert_eq!(back.rows(), 6);
        assert_eq!(back.names, t.names);
        assert_eq!(back.col("i").unwrap(), &Col::I32(vec![1, 2, 3, 1, 2, 3]));
        assert_eq!(back.col("q").unwrap(), &Col::OptF32(vec![Some(0.9), None, Some(0.1), Some(0.9), None, Some(0.1)]));
        let Col::F32(x) = back.col("x").unwrap() else { panic!() };
        assert!(x[1].is_nan() && x[2] == -1.0);
        let Col::OptStr { dict, codes } = back.col("o").unwrap() else { panic!() };
        let text: Vec<Option<&str>> = codes.iter().map(|c| c.map(|c| &*dict[c as usize])).collect();
        assert_eq!(text, [None, Some("b"), Some("a"), None, Some("b"), Some("a")]);
        let csv = dir.path().join("t.csv");
        let mut c = CsvWriter::create(&csv, &t).unwrap();
        c.write(&t).unwrap();
        c.finish().unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(text.lines().next(), Some("i,t,x,q,f,s,o"));
        assert_eq!(text.lines().nth(2), Some("2,20,NaN,,2,b,b"));
    }
}
