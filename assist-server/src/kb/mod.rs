//! The knowledge index: every paragraph of every article is a tantivy document, in an in-RAM
//! index per language, tokenized with jieba (Chinese) and a light English stemmer. A query with
//! the customer's words returns the best paragraph, so the agent sees one answer, not an article.

mod tokenizer;

use assist_engine::{Article, Knowledge, Passage};
use std::collections::{HashMap, HashSet};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, Term};
pub use tokenizer::{tokens, MixedTokenizer, TOKENIZER_NAME};

/// A paragraph as the index knows it.
#[derive(Debug, Clone)]
struct Paragraph {
    id: String,
    title: String,
    text: String,
    /// Stemmed tokens of the paragraph, for highlighting.
    terms: HashSet<String>,
}

struct LanguageIndex {
    reader: IndexReader,
    body: tantivy::schema::Field,
    title: tantivy::schema::Field,
    paragraphs: Vec<Paragraph>,
}

/// Why the index could not be built.
#[derive(Debug, thiserror::Error)]
#[error("building the knowledge index: {0}")]
pub struct KbError(#[from] tantivy::TantivyError);

/// Knowledge snippets from the pack's articles.
pub struct KnowledgeBase {
    languages: HashMap<String, LanguageIndex>,
}

/// Query terms a paragraph must contain before it is worth showing (fewer when the query has
/// fewer terms): one common word in a long question is not an answer.
const MIN_MATCHED_TERMS: usize = 2;

impl KnowledgeBase {
    pub fn build(articles: &[Article]) -> Result<KnowledgeBase, KbError> {
        let mut by_language: HashMap<&str, Vec<&Article>> = HashMap::new();
        for article in articles {
            by_language
                .entry(article.language.as_str())
                .or_default()
                .push(article);
        }
        let mut languages = HashMap::new();
        for (language, articles) in by_language {
            languages.insert(language.to_string(), LanguageIndex::build(&articles)?);
        }
        Ok(KnowledgeBase { languages })
    }

    pub fn paragraphs(&self) -> usize {
        self.languages.values().map(|l| l.paragraphs.len()).sum()
    }
}

impl LanguageIndex {
    fn build(articles: &[&Article]) -> Result<LanguageIndex, KbError> {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text = TextOptions::default().set_indexing_options(indexing);
        let mut builder = Schema::builder();
        let body = builder.add_text_field("body", text.clone());
        let title = builder.add_text_field("title", text);
        let pid = builder.add_u64_field("pid", NumericOptions::default().set_fast());
        let index = Index::create_in_ram(builder.build());
        index
            .tokenizers()
            .register(TOKENIZER_NAME, MixedTokenizer::analyzer());
        let mut writer = index.writer_with_num_threads(1, 15_000_000)?;
        let mut paragraphs = Vec::new();
        for article in articles {
            let heading = format!("{} {}", article.title, article.tags.join(" "));
            for (n, paragraph) in article.paragraphs.iter().enumerate() {
                let id = paragraphs.len() as u64;
                writer.add_document(doc!(
                    body => paragraph.as_str(),
                    title => heading.as_str(),
                    pid => id,
                ))?;
                paragraphs.push(Paragraph {
                    id: format!("{}#{}", article.id, n + 1),
                    title: article.title.clone(),
                    text: paragraph.clone(),
                    terms: tokens(paragraph).into_iter().collect(),
                });
            }
        }
        writer.commit()?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(LanguageIndex {
            reader,
            body,
            title,
            paragraphs,
        })
    }

    fn search(&self, query: &str, min_score: f32) -> Option<Passage> {
        let mut terms: Vec<String> = tokens(query);
        terms.sort();
        terms.dedup();
        if terms.is_empty() {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in &terms {
            let body = TermQuery::new(
                Term::from_field_text(self.body, t),
                IndexRecordOption::WithFreqs,
            );
            let title = TermQuery::new(
                Term::from_field_text(self.title, t),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((Occur::Should, Box::new(body)));
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(title), 0.5)),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(5).order_by_score())
            .ok()?;
        for (score, address) in top {
            if score < min_score {
                break;
            }
            let pid = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("pid")
                .ok()?
                .first(address.doc_id)?;
            let paragraph = self.paragraphs.get(pid as usize)?;
            let highlights: Vec<String> = terms
                .iter()
                .filter(|t| paragraph.terms.contains(*t))
                .cloned()
                .collect();
            if highlights.len() < MIN_MATCHED_TERMS.min(terms.len()) {
                continue;
            }
            return Some(Passage {
                id: paragraph.id.clone(),
                title: paragraph.title.clone(),
                text: paragraph.text.clone(),
                score,
                highlights,
            });
        }
        None
    }
}

impl Knowledge for KnowledgeBase {
    fn best_passage(&self, language: &str, query: &str, min_score: f32) -> Option<Passage> {
        self.languages.get(language)?.search(query, min_score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_kb() -> KnowledgeBase {
        let pack = crate::packs::load_pack(std::path::Path::new("../knowledge"))
            .expect("the default pack loads");
        KnowledgeBase::build(&pack.engine.articles).expect("index builds")
    }

    fn best(kb: &KnowledgeBase, language: &str, query: &str) -> Option<String> {
        kb.best_passage(language, query, 1.0).map(|p| p.id)
    }

    #[test]
    fn customer_questions_find_the_right_article() {
        let kb = default_kb();
        let cases = [
            ("zh", "我的退款什么时候到账 都一个星期了", "refunds-zh"),
            ("zh", "我的快递到哪了 物流一直没更新", "delivery-zh"),
            ("en", "can I use two coupons on one order", "promotions-en"),
            (
                "en",
                "someone logged into my account and changed my password",
                "account-security-en",
            ),
        ];
        for (language, query, article) in cases {
            let found = best(&kb, language, query).unwrap_or_default();
            assert!(
                found.starts_with(article),
                "{query:?} found {found:?}, expected {article}"
            );
        }
    }

    #[test]
    fn small_talk_finds_nothing() {
        let kb = default_kb();
        for (language, query) in [
            ("zh", "好的 我知道了 谢谢"),
            ("en", "okay thank you so much"),
        ] {
            assert_eq!(best(&kb, language, query), None, "{query:?}");
        }
    }

    #[test]
    fn a_language_without_articles_finds_nothing() {
        assert_eq!(best(&default_kb(), "fr", "remboursement"), None);
    }
}
